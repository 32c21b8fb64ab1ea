package outbox_test

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cellwarden/cellwarden/alerting/outbox"
)

func open(t *testing.T, path string, max int) *outbox.Outbox {
	t.Helper()
	o, err := outbox.Open(path, outbox.Options{MaxEntries: max})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func enqueue(t *testing.T, o *outbox.Outbox, target, data string) uint64 {
	t.Helper()
	var seq uint64
	err := o.Update(func(tx *outbox.Tx) error {
		var err error
		seq, err = tx.Enqueue(target, []byte(data))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// drain acknowledges target's entries one by one and returns their data in
// the order Oldest gave them.
func drain(t *testing.T, o *outbox.Outbox, target string) []string {
	t.Helper()
	var got []string
	for {
		e, ok, err := o.Oldest(target)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return got
		}
		got = append(got, string(e.Data))
		if err := o.Ack(target, e.Seq); err != nil {
			t.Fatal(err)
		}
	}
}

func TestQueuesAreFIFOPerTarget(t *testing.T) {
	o := open(t, filepath.Join(t.TempDir(), "o.db"), 0)
	defer o.Close()
	for _, x := range []struct{ target, data string }{{"a", "a1"}, {"b", "b1"}, {"a", "a2"}, {"a", "a3"}, {"b", "b2"}} {
		enqueue(t, o, x.target, x.data)
	}
	if o.Len("a") != 3 || o.Len("b") != 2 || o.Total() != 5 {
		t.Errorf("Len(a)=%d Len(b)=%d Total=%d, want 3 2 5", o.Len("a"), o.Len("b"), o.Total())
	}
	if got := drain(t, o, "a"); strings.Join(got, ",") != "a1,a2,a3" {
		t.Errorf("target a delivered %v, want a1,a2,a3", got)
	}
	if got := drain(t, o, "b"); strings.Join(got, ",") != "b1,b2" {
		t.Errorf("target b delivered %v, want b1,b2", got)
	}
	if o.Total() != 0 {
		t.Errorf("Total after draining = %d", o.Total())
	}
	if err := o.Ack("a", 1); err != nil {
		t.Errorf("acknowledging an entry twice: %v", err)
	}
}

// A full outbox drops its oldest entry, whichever target it belongs to,
// and counts the drop against that target.
func TestFullOutboxDropsTheOldest(t *testing.T) {
	o := open(t, filepath.Join(t.TempDir(), "o.db"), 3)
	defer o.Close()
	enqueue(t, o, "down", "d1")
	enqueue(t, o, "up", "u1")
	enqueue(t, o, "down", "d2")
	enqueue(t, o, "down", "d3") // drops d1
	enqueue(t, o, "up", "u2")   // drops u1
	if o.Total() != 3 {
		t.Errorf("Total = %d, want the capacity 3", o.Total())
	}
	if got, want := o.Dropped(), map[string]uint64{"down": 1, "up": 1}; !maps.Equal(got, want) {
		t.Errorf("Dropped = %v, want %v", got, want)
	}
	if got := drain(t, o, "down"); strings.Join(got, ",") != "d2,d3" {
		t.Errorf("down kept %v, want d2,d3", got)
	}
	if got := drain(t, o, "up"); strings.Join(got, ",") != "u2" {
		t.Errorf("up kept %v, want u2", got)
	}
}

func TestFailedUpdateWritesNothing(t *testing.T) {
	o := open(t, filepath.Join(t.TempDir(), "o.db"), 0)
	defer o.Close()
	boom := errors.New("boom")
	err := o.Update(func(tx *outbox.Tx) error {
		if _, err := tx.Enqueue("a", []byte("x")); err != nil {
			return err
		}
		if err := tx.PutState("g", []byte("s")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	if _, ok, _ := o.Oldest("a"); ok || o.Total() != 0 {
		t.Errorf("the failed transaction left an entry (Total %d)", o.Total())
	}
	n := 0
	o.States(func(string, []byte) error { n++; return nil })
	if n != 0 {
		t.Errorf("the failed transaction left %d state records", n)
	}
}

func TestReopenKeepsEntriesStateAndIdentity(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.db")
	o := open(t, path, 0)
	seq := enqueue(t, o, "a", "a1")
	enqueue(t, o, "a", "a2")
	if err := o.Update(func(tx *outbox.Tx) error { return tx.PutState("group/1", []byte("firing")) }); err != nil {
		t.Fatal(err)
	}
	key, id := o.Key(seq), o.ID()
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	o = open(t, path, 0)
	defer o.Close()
	if o.ID() != id || o.Key(seq) != key {
		t.Errorf("identity changed on reopen: %s %s, was %s %s", o.ID(), o.Key(seq), id, key)
	}
	if o.Len("a") != 2 {
		t.Errorf("Len after reopen = %d, want 2", o.Len("a"))
	}
	states := map[string]string{}
	o.States(func(k string, v []byte) error { states[k] = string(v); return nil })
	if !maps.Equal(states, map[string]string{"group/1": "firing"}) {
		t.Errorf("state after reopen = %v", states)
	}
	if got := drain(t, o, "a"); strings.Join(got, ",") != "a1,a2" {
		t.Errorf("after reopen delivered %v, want a1,a2", got)
	}
}

func TestKeysDifferBetweenDatabases(t *testing.T) {
	a := open(t, filepath.Join(t.TempDir(), "a.db"), 0)
	defer a.Close()
	b := open(t, filepath.Join(t.TempDir(), "b.db"), 0)
	defer b.Close()
	if a.Key(1) == b.Key(1) {
		t.Errorf("two databases give entry 1 the same key %s", a.Key(1))
	}
}

// helperEnv makes the test binary act as a writer that is killed.
const helperEnv = "CELLWARDEN_OUTBOX_WRITER"

// TestWriterProcess is not a test: run by TestSurvivesKill9 with helperEnv
// set, it enqueues entries for ever, printing each sequence number once
// its transaction has returned, and acknowledging every third one.
func TestWriterProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		return
	}
	o, err := outbox.Open(path, outbox.Options{MaxEntries: 1 << 20})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for i := 0; ; i++ {
		var seq uint64
		err := o.Update(func(tx *outbox.Tx) error {
			var err error
			seq, err = tx.Enqueue("t", []byte(strconv.Itoa(i)))
			if err != nil {
				return err
			}
			return tx.PutState("last", []byte(strconv.Itoa(i)))
		})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("enqueued", seq, i)
		if i%3 == 0 {
			if err := o.Ack("t", seq); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			fmt.Println("acked", seq)
		}
	}
}

// A writer killed with SIGKILL in the middle of its transactions leaves a
// database that opens, holds every entry it reported as enqueued and not
// acknowledged, in order, and no acknowledged one.
func TestSurvivesKill9(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestWriterProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	enqueued := map[uint64]string{} // reported enqueued and not acked
	acked := map[uint64]bool{}
	// The writer acknowledges every third entry and reports it afterwards,
	// so the kill can land between a durable Ack and its "acked" line: that
	// one entry may be present or gone.
	var ackInFlight uint64
	sc := bufio.NewScanner(stdout)
	// Everything the writer printed is read, also what was still in the pipe
	// when the kill landed.
	for lines := 0; sc.Scan(); lines++ {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "enqueued":
			seq, _ := strconv.ParseUint(f[1], 10, 64)
			enqueued[seq] = f[2]
			if i, _ := strconv.Atoi(f[2]); i%3 == 0 {
				ackInFlight = seq
			}
		case len(f) == 2 && f[0] == "acked":
			seq, _ := strconv.ParseUint(f[1], 10, 64)
			delete(enqueued, seq)
			acked[seq] = true
			ackInFlight = 0
		default:
			t.Fatalf("writer: %s", sc.Text())
		}
		if lines == 600 {
			cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	cmd.Wait()
	if ackInFlight != 0 {
		delete(enqueued, ackInFlight)
	}
	if len(enqueued) < 300 {
		t.Fatalf("only %d entries before the kill", len(enqueued))
	}

	o := open(t, path, 0)
	defer o.Close()
	var last uint64
	for {
		e, ok, err := o.Oldest("t")
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if e.Seq <= last {
			t.Errorf("entry %d after %d", e.Seq, last)
		}
		last = e.Seq
		if acked[e.Seq] {
			t.Errorf("entry %d was acknowledged before the kill but is back", e.Seq)
		}
		if want, ok := enqueued[e.Seq]; ok && string(e.Data) != want {
			t.Errorf("entry %d holds %q, want %q", e.Seq, e.Data, want)
		}
		delete(enqueued, e.Seq)
		if err := o.Ack("t", e.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if len(enqueued) != 0 {
		t.Errorf("%d entries reported enqueued before the kill are missing, e.g. %v", len(enqueued), firstKey(enqueued))
	}
}

func firstKey(m map[uint64]string) uint64 {
	for k := range m {
		return k
	}
	return 0
}
