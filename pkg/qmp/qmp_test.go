package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const greeting = `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}}, "capabilities": ["oob"]}}`

// A step is what the fake QEMU does for one command it reads: the lines it
// answers with, where "ID" stands for the command's id.
type step struct {
	lines []string
}

// fakeQEMU serves QMP over one end of a net.Pipe: the greeting, then for
// every command the next step's lines. It records what it read and never
// touches t: the test goroutine asserts on the result it sends.
type fakeQEMU struct {
	got  chan []map[string]any
	conn net.Conn
}

func serve(greet string, steps ...step) (*fakeQEMU, net.Conn) {
	client, server := net.Pipe()
	f := &fakeQEMU{got: make(chan []map[string]any, 1), conn: server}
	go func() {
		var got []map[string]any
		defer func() { server.Close(); f.got <- got }()
		if greet != "" {
			if _, err := io.WriteString(server, greet+"\n"); err != nil {
				return
			}
		}
		r := bufio.NewReader(server)
		for _, s := range steps {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			var cmd map[string]any
			if err := json.Unmarshal(line, &cmd); err != nil {
				got = append(got, map[string]any{"bad": string(line)})
				return
			}
			got = append(got, cmd)
			id, _ := json.Marshal(cmd["id"])
			for _, l := range s.lines {
				if _, err := io.WriteString(server, strings.ReplaceAll(l, "ID", string(id))+"\n"); err != nil {
					return
				}
			}
		}
	}()
	return f, client
}

func ok() step { return step{[]string{`{"return": {}, "id": ID}`}} }

// commands lists the commands the fake read, with their arguments.
func commands(got []map[string]any) []string {
	var out []string
	for _, c := range got {
		s, _ := c["execute"].(string)
		if a, ok := c["arguments"]; ok {
			b, _ := json.Marshal(a)
			s += " " + string(b)
		}
		out = append(out, s)
	}
	return out
}

func TestHandshakeAndCommands(t *testing.T) {
	ctx := context.Background()
	f, conn := serve(greeting,
		ok(),
		step{[]string{
			`{"timestamp": {"seconds": 1}, "event": "RESUME"}`,
			`{"return": [{"thread-id": 11541, "props": {"core-id": 0}, "qom-path": "/machine/unattached/device[0]", "cpu-index": 0, "target": "x86_64"}, {"thread-id": 11542, "qom-path": "/machine/unattached/device[2]", "cpu-index": 1, "target": "x86_64"}], "id": ID}`,
		}},
		step{[]string{`{"return": [{"poll-shrink": 0, "thread-id": 1261, "aio-max-batch": 0, "poll-grow": 0, "poll-max-ns": 32768, "id": "io0"}], "id": ID}`}},
		ok(),
		step{[]string{`{"return": {"status": "running", "singlestep": false, "running": true}, "id": ID}`}},
		ok(),
		step{[]string{`{"error": {"class": "GenericError", "desc": "no way"}, "id": ID}`}},
		step{[]string{`{"timestamp": {"seconds": 2}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}`}},
	)
	c, err := New(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	c.Events = func(e Event) { events = append(events, e.Name) }

	cpus, err := c.QueryCPUsFast(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []CPU{
		{Index: 0, ThreadID: 11541, QOMPath: "/machine/unattached/device[0]", Target: "x86_64"},
		{Index: 1, ThreadID: 11542, QOMPath: "/machine/unattached/device[2]", Target: "x86_64"},
	}
	if diff := cmp.Diff(want, cpus); diff != "" {
		t.Errorf("QueryCPUsFast (-want +got):\n%s", diff)
	}
	// As QEMU 7.2 answers.
	ios, err := c.QueryIOThreads(ctx)
	if diff := cmp.Diff([]IOThread{{ID: "io0", ThreadID: 1261}}, ios); err != nil || diff != "" {
		t.Errorf("QueryIOThreads: %v (-want +got):\n%s", err, diff)
	}
	if err := c.Cont(ctx); err != nil {
		t.Errorf("Cont: %v", err)
	}
	if st, err := c.QueryStatus(ctx); err != nil || st != (Status{Running: true, Status: "running"}) {
		t.Errorf("QueryStatus = %+v, %v", st, err)
	}
	if err := c.SystemPowerdown(ctx); err != nil {
		t.Errorf("SystemPowerdown: %v", err)
	}
	err = c.Execute(ctx, "human-monitor-command", map[string]string{"command-line": "info cpus"}, nil)
	var qerr *Error
	if !errors.As(err, &qerr) || qerr.Class != "GenericError" || qerr.Desc != "no way" {
		t.Errorf("error reply: got %v", err)
	}
	// QEMU exits without answering quit.
	if err := c.Quit(ctx); err != nil {
		t.Errorf("Quit: %v", err)
	}
	got := <-f.got
	wantCmds := []string{"qmp_capabilities", "query-cpus-fast", "query-iothreads", "cont", "query-status", "system_powerdown",
		`human-monitor-command {"command-line":"info cpus"}`, "quit"}
	if diff := cmp.Diff(wantCmds, commands(got)); diff != "" {
		t.Errorf("commands QEMU read (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"RESUME", "SHUTDOWN"}, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if err := c.Cont(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("command after QEMU left: got %v, want ErrClosed", err)
	}
}

func TestSkipsStaleReplies(t *testing.T) {
	ctx := context.Background()
	f, conn := serve(greeting, ok(), step{[]string{`{"return": {"status": "old"}, "id": 999}`, `{"return": {"status": "paused", "running": false}, "id": ID}`}})
	c, err := New(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.QueryStatus(ctx)
	if err != nil || st.Status != "paused" {
		t.Errorf("QueryStatus = %+v, %v; want the reply with its own id", st, err)
	}
	c.Close()
	<-f.got
}

func TestNotQMP(t *testing.T) {
	f, conn := serve(`{"hello": 1}`)
	_, err := New(context.Background(), conn)
	if err == nil || !strings.Contains(err.Error(), "does not speak QMP") {
		t.Errorf("New = %v, want a greeting error", err)
	}
	<-f.got
}

func TestClosedBeforeGreeting(t *testing.T) {
	f, conn := serve("")
	_, err := New(context.Background(), conn)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("New = %v, want io.ErrUnexpectedEOF", err)
	}
	<-f.got
}

// A QEMU that never greets: New ends when ctx does, naming the deadline.
func TestGreetingDeadline(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := New(ctx, client)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("New = %v, want context.DeadlineExceeded", err)
	}
}

// A command cancelled while QEMU does not answer returns, and the client
// refuses further commands rather than read a stale reply.
func TestCancelledCommand(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	read := make(chan string, 2)
	go func() {
		io.WriteString(server, greeting+"\n")
		r := bufio.NewReader(server)
		line, _ := r.ReadString('\n')
		read <- line
		io.WriteString(server, `{"return": {}, "id": 1}`+"\n")
		line, _ = r.ReadString('\n') // and never answer
		read <- line
	}()
	c, err := New(context.Background(), client)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := c.QueryStatus(ctx); errc <- err }()
	<-read
	if got := <-read; !strings.Contains(got, `"query-status"`) {
		t.Errorf("QEMU read %q, want query-status", got)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled QueryStatus = %v, want context.Canceled", err)
	}
	if err := c.Cont(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("command after cancel = %v, want ErrClosed", err)
	}
}
