#!/usr/bin/python3
"""A Soltaro-layout BMS served by pymodbus (Debian python3-pymodbus), for
cellwarden's integration tests: units 1 and 2 hold a 2-module rack (12 cells
per module); unit 3 does not answer at all (a dead unit behind a live
gateway). Every request's function code is appended to the log file.

usage: pymodbus_bms.py PORT LOGFILE
"""
import sys

from pymodbus.datastore import (ModbusSequentialDataBlock, ModbusServerContext,
                                ModbusSlaveContext)
from pymodbus.server import StartTcpServer

PORT, LOG = int(sys.argv[1]), sys.argv[2]
BASE = 0x2100


def rack(unit):
    regs = [0] * (0x2C00 + 24 - BASE + 1)

    def put(addr, value):
        regs[addr - BASE] = value & 0xFFFF

    put(0x2100, 7680 + unit)       # rack voltage, 0.1 V
    put(0x2101, -200)              # rack current, 0.1 A (int16)
    put(0x2103, 87)                # SOC %
    put(0x2104, 96)                # SOH %
    for n in range(24):
        put(0x2800 + n, 3300 + n)  # cell voltages, mV
        put(0x2C00 + n, 250 + n)   # cell temperatures, 0.1 °C
    return regs


class LoggingSlave(ModbusSlaveContext):
    def getValues(self, fc_as_hex, address, count=1):
        with open(LOG, "a") as f:
            f.write("read fc=%d addr=%d count=%d\n" % (fc_as_hex, address, count))
        return super().getValues(fc_as_hex, address, count)

    def setValues(self, fc_as_hex, address, values):
        with open(LOG, "a") as f:
            f.write("write fc=%d addr=%d\n" % (fc_as_hex, address))
        return super().setValues(fc_as_hex, address, values)


slaves = {u: LoggingSlave(hr=ModbusSequentialDataBlock(BASE, rack(u)), zero_mode=True) for u in (1, 2)}
context = ModbusServerContext(slaves=slaves, single=False)
StartTcpServer(context=context, address=("127.0.0.1", PORT), allow_reuse_address=True,
               ignore_missing_slaves=True)
