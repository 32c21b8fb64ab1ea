// Command cellwarden watches the lithium-ion batteries of data-center UPS
// systems and raises alerts before a cell fails or a battery outlives its
// safe life.
//
// Subcommands: replay (run the detector over a telemetry file),
// check-config (validate a configuration file) and demo (the quick start).
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/alecthomas/kingpin/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// exitError carries an exit status out of a subcommand.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// run parses args, builds the logger and runs one subcommand. It returns
// the process exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := kingpin.New("cellwarden", "Watches the lithium-ion batteries of data-center UPS systems: cells drifting from their peers, heat, stale telemetry and battery age.")
	app.UsageWriter(stderr)
	app.ErrorWriter(stderr)
	// Help and --version end the parse through Terminate; remember the
	// status instead of letting kingpin exit the process.
	terminated := -1
	app.Terminate(func(code int) {
		if terminated < 0 {
			terminated = code
		}
	})
	app.HelpFlag.Short('h')
	logLevel := app.Flag("log.level", "Only log messages with the given severity or above: debug, info, warn, error.").Default("info").String()
	logFormat := app.Flag("log.format", "Output format of log messages: console or json.").Default("console").String()

	replay := app.Command("replay", "Run the detector over a telemetry CSV file in event time and write alerts as NDJSON.")
	ro := replayOptions{}
	replay.Flag("input", "Telemetry CSV file (long format; .gz is decompressed; - is standard input).").Required().StringVar(&ro.input)
	replay.Flag("inventory", "Battery inventory YAML (overrides the configuration's inventory).").StringVar(&ro.inventory)
	replay.Flag("config", "Configuration file; without it the built-in defaults apply.").StringVar(&ro.config)
	replay.Flag("baseline", "Run the static BMS threshold baseline (50/60 °C, chemistry voltage limits, single readings) instead of cellwarden's rules, for comparison.").BoolVar(&ro.baseline)
	replay.Flag("alerts-out", "Write alerts to this file instead of standard output (- is standard output).").StringVar(&ro.alertsOut)

	check := app.Command("check-config", "Validate a configuration file (and the inventory it names); print every problem.")
	checkFile := check.Flag("config", "Configuration file to check.").Required().String()

	demo := app.Command("demo", "Run a simulated fleet live on loopback (Modbus and MQTT) with cellwarden serving it; --replay replays it in event time instead.")
	do := demoOptions{}
	demo.Flag("export", "Write the demo telemetry and inventory to this directory instead of running it.").StringVar(&do.export)
	demo.Flag("replay", "Replay the fleet in event time in a second and print the alerts, instead of running it live.").BoolVar(&do.replay)
	demo.Flag("speed", "Live: simulated time per real time (60: the six simulated hours in six minutes).").Default("60").Float64Var(&do.speed)
	demo.Flag("web.listen-address", "Live: the daemon's status page and /metrics.").Default("127.0.0.1:9561").StringVar(&do.listen)

	simCmd := app.Command("sim", "Simulate a battery fleet with labelled faults.")
	simScenarios := simCmd.Command("scenarios", "Write the standard scenario suite: per scenario telemetry.csv.gz, inventory.yaml and labels.json.")
	so := simOptions{}
	simScenarios.Flag("out", "Directory to write the scenarios to.").Required().StringVar(&so.out)
	simScenarios.Flag("seed", "Seed: the same seed gives the same bytes.").Default("1").Uint64Var(&so.seed)
	simScenarios.Flag("only", "Write only this scenario (repeatable).").StringsVar(&so.only)
	simScenarios.Flag("physics", physicsFlagHelp()).PlaceHolder("KEY=VALUE,...").StringsVar(&so.physics)
	simServe := simCmd.Command("serve", "Play a scenario in real time and serve it over Modbus TCP in a vendor register layout (one unit id per string), publish it to an MQTT broker, or both.")
	sso := simServeOptions{}
	simServe.Flag("modbus", "Listen address for Modbus TCP, host:port.").StringVar(&sso.modbus)
	simServe.Flag("profile", "Register layout: a built-in profile, or sunspec (one unit per UPS).").Default("soltaro_single_rack_vc").StringVar(&sso.profile)
	simServe.Flag("scenario", "Scenario of the standard suite.").Default("runaway_nmc_slow").StringVar(&sso.scenario)
	simServe.Flag("seed", "Seed.").Default("1").Uint64Var(&sso.seed)
	simServe.Flag("speed", "Playback speed: 1 is real time, 60 plays an hour a minute.").Default("1").Float64Var(&sso.speed)
	addMQTTPublishFlags(simServe, &sso.pub, false)
	simPublish := simCmd.Command("publish", "Play a scenario in real time and publish it to an MQTT broker (docs/mqtt.md: the reference JSON layout or plain values); the same as sim serve --mqtt.")
	spo := simPublishOptions{}
	addMQTTPublishFlags(simPublish, &spo, true)
	simPublish.Flag("scenario", "Scenario of the standard suite.").Default("runaway_nmc_slow").StringVar(&spo.scenario)
	simPublish.Flag("seed", "Seed.").Default("1").Uint64Var(&spo.seed)
	simPublish.Flag("speed", "Playback speed: 1 is real time, 60 plays an hour a minute.").Default("1").Float64Var(&spo.speed)
	simList := simCmd.Command("list", "List the standard scenarios.")
	simListSeed := simList.Flag("seed", "Seed.").Default("1").Uint64()

	scoreCmd := app.Command("score", "Score alerts against a scenario's ground truth: recall, delay, runaway lead time, false alerts per 1000 cell-days, notifications per incident, end-of-life precision and recall.")
	sco := scoreOptions{}
	scoreCmd.Flag("labels", "A scenario's labels.json (repeatable).").Required().StringsVar(&sco.labels)
	scoreCmd.Flag("alerts", "The alerts NDJSON replay wrote for it (repeatable, same order as --labels).").Required().StringsVar(&sco.alerts)
	scoreCmd.Flag("baseline-alerts", "Alerts of replay --baseline for the same scenarios (repeatable, same order).").StringsVar(&sco.baseline)
	scoreCmd.Flag("markdown", "Also write the report as Markdown to this file.").StringVar(&sco.markdown)
	scoreCmd.Flag("seed", "The scenarios' seed, named in the Markdown report.").Default("1").Uint64Var(&sco.seed)

	modbusCmd := app.Command("modbus", "Modbus helpers for field engineers.")
	probe := modbusCmd.Command("probe", "Read a register range once (read function codes only) and show it decoded in every type, byte and word order and scale, ranked by plausibility for a metric.")
	po := probeOptions{}
	probe.Flag("address", "Modbus TCP endpoint, host:port.").Required().StringVar(&po.address)
	probe.Flag("unit", "Unit id.").Default("1").Uint8Var(&po.unit)
	probe.Flag("input", "Read input registers (FC 4) instead of holding registers (FC 3).").BoolVar(&po.input)
	probe.Flag("start", "First register address.").Required().Uint16Var(&po.start)
	probe.Flag("count", "Number of registers (1..125).").Default("8").Uint16Var(&po.count)
	probe.Flag("metric", "What the registers should hold, e.g. cell_voltage_volts.").Required().StringVar(&po.metric)
	probe.Flag("timeout", "Request timeout.").Default("2s").DurationVar(&po.timeout)
	probe.Flag("show", "How many decodings to show.").Default("8").IntVar(&po.showBest)

	mqttCmd := app.Command("mqtt", "MQTT helpers.")
	mqttRead := mqttCmd.Command("read", "Subscribe with the MQTT collectors of a configuration file and write what arrives as telemetry CSV (pipe it into replay --input -).")
	mqo := mqttReadOptions{}
	mqttRead.Flag("config", "Configuration file with collectors.mqtt entries.").Required().StringVar(&mqo.config)
	mqttRead.Flag("collector", "Run only the collector of this name (repeatable; default all).").StringsVar(&mqo.collectors)
	mqttRead.Flag("health-interval", "Log each collector's health this often (0: only at the end).").Default("1m").DurationVar(&mqo.healthInterval)

	mread := modbusCmd.Command("read", "Poll BMSs behind a Modbus TCP endpoint through a register map and write their telemetry as CSV (pipe it into replay --input -).")
	mro := readOptions{}
	mread.Flag("address", "Modbus TCP endpoint, host:port.").Required().StringVar(&mro.address)
	mread.Flag("profile", "Register map: a built-in profile.").Default("soltaro_single_rack_vc").StringVar(&mro.profile)
	mread.Flag("ups", "The UPS the BMSs belong to.").Required().StringVar(&mro.ups)
	mread.Flag("device", "UNIT:STRING: a BMS's unit id and the string it manages (repeatable; default 1:1).").StringsVar(&mro.devices)
	mread.Flag("modules", "Modules per string (sizes the per-cell arrays; 0 keeps the profile's).").IntVar(&mro.modules)
	mread.Flag("interval", "Poll interval.").Default("10s").DurationVar(&mro.interval)
	mread.Flag("timeout", "Request timeout.").Default("2s").DurationVar(&mro.timeout)
	mread.Flag("polls", "Stop after this many polls per device (0: until interrupted).").IntVar(&mro.polls)
	mread.Flag("rtu-over-tcp", "The endpoint is a gateway passing raw Modbus RTU frames over TCP.").BoolVar(&mro.rtuOverTCP)

	serveCmd, sro := addServe(app)
	auditCmd, ao := addAudit(app)
	lc := addLifecycleCommands(app)
	hashPw := addHashPassword(app)

	cmd, err := app.Parse(joinDashValues(args))
	if terminated >= 0 {
		return terminated
	}
	if err != nil {
		fmt.Fprintf(stderr, "cellwarden: %v (see --help)\n", err)
		return 2
	}
	logger, err := newLogger(*logLevel, *logFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "cellwarden: %v\n", err)
		return 2
	}
	defer func() { _ = logger.Sync() }()

	switch cmd {
	case replay.FullCommand():
		ro.stdin = stdin
		err = runReplay(ro, stdout, stderr, logger.Named("replay"))
	case check.FullCommand():
		err = runCheckConfig(*checkFile, stdout, stderr)
	case simScenarios.FullCommand():
		err = runSimScenarios(so, stdout, logger.Named("sim"))
	case simServe.FullCommand():
		err = runSimServeAndPublish(sso, stdout, logger.Named("sim"))
	case simPublish.FullCommand():
		err = runSimPublish(spo, stdout, logger.Named("sim"))
	case mqttRead.FullCommand():
		err = runMQTTRead(mqo, stdout, logger.Named("mqtt"))
	case simList.FullCommand():
		err = runSimList(*simListSeed, stdout)
	case scoreCmd.FullCommand():
		err = runScore(sco, stdout)
	case mread.FullCommand():
		err = runModbusRead(mro, stdout, logger.Named("modbus"))
	case probe.FullCommand():
		err = runModbusProbe(po, stdout)
	case serveCmd.FullCommand():
		err = runServe(sro, logger)
	case demo.FullCommand():
		err = runDemo(do, stdout, stderr, logger.Named("demo"))
	case auditCmd.FullCommand():
		err = runAudit(ao, stdout, stderr)
	case hashPw.cmd.FullCommand():
		err = hashPw.run(stdin, stdout)
	default:
		_, err = lc.run(cmd, stdout, stderr)
	}
	if err != nil {
		if e, ok := err.(exitError); ok {
			return e.code
		}
		fmt.Fprintf(stderr, "cellwarden %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// joinDashValues rewrites "--flag -" as "--flag=-": kingpin does not take a
// lone "-" (standard input) as a flag's value.
func joinDashValues(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		prev := ""
		if len(out) > 0 {
			prev = out[len(out)-1]
		}
		if a == "-" && i > 0 && strings.HasPrefix(prev, "--") && !strings.Contains(prev, "=") {
			out[len(out)-1] = prev + "=-"
			continue
		}
		out = append(out, a)
	}
	return out
}

// newLogger builds the process's one logger, writing to w.
func newLogger(level, format string, w io.Writer) (*zap.Logger, error) {
	var lvl zapcore.Level
	switch level {
	case "debug", "info", "warn", "error":
		lvl, _ = zapcore.ParseLevel(level)
	default:
		return nil, fmt.Errorf("--log.level must be one of debug, info, warn, error; got %q", level)
	}
	if format != "console" && format != "json" {
		return nil, fmt.Errorf("--log.format must be console or json; got %q", format)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if format == "json" {
		enc = zapcore.NewJSONEncoder(encCfg)
	} else {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	}
	core := zapcore.NewCore(enc, zapcore.AddSync(w), lvl)
	return zap.New(core), nil
}
