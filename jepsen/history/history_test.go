package history_test

import (
	"bytes"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/strata-mail/strata/jepsen/history"
)

func sample() *history.History {
	r := history.NewRecorder(42)
	id := r.Invoke(history.Op{Process: 1, Session: 7, Frontend: "127.0.0.1:1", Kind: history.KindAppend, Account: "a@x", Mailbox: "INBOX", MessageID: "<42-1-1@jepsen>", Flags: []string{`\Seen`}})
	r.Complete(id, func(op *history.Op) {
		op.Outcome = history.OK
		op.UIDValidity, op.UIDs = 9, []uint32{3}
		op.Updates = []history.Update{{Kind: history.UpdateExists, Count: 3}, {Kind: history.UpdateVanished, UIDs: []uint32{1, 2}, Earlier: true}}
	})
	id = r.Invoke(history.Op{Process: 2, Kind: history.KindFetch, Mailbox: "INBOX", All: true, ByUID: true})
	r.Complete(id, func(op *history.Op) {
		op.Outcome = history.OK
		op.Messages = []history.Message{{Seq: 1, UID: 3, MessageID: "<42-1-1@jepsen>", Flags: []string{}, ModSeq: 5}, {Seq: 2, UID: 4}}
	})
	r.Invoke(history.Op{Process: 3, Kind: history.KindStore, Targets: []uint32{3}, StoreMode: history.StoreAdd, Flags: []string{"$x"}})
	f := r.FaultStart("partition", "n1", "leader isolated")
	r.FaultEnd(f)
	r.FaultStart("kill", "fe1", "")
	return r.History()
}

func TestSaveLoadRoundTrip(t *testing.T) {
	h := sample()
	var buf bytes.Buffer
	if err := h.Save(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := history.Load(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, h) {
		t.Fatalf("round trip changed the history:\n got %+v\nwant %+v", got, h)
	}
	if got.Ops[1].Messages[0].Flags == nil || got.Ops[1].Messages[1].Flags != nil {
		t.Fatal("empty and absent FLAGS must stay apart")
	}
	if got.Ops[2].Done() || got.Ops[2].Outcome != history.Unknown {
		t.Fatalf("an op never completed must load as unknown and not done: %+v", got.Ops[2])
	}
}

func TestRecorderConcurrent(t *testing.T) {
	r := history.NewRecorder(1)
	var wg sync.WaitGroup
	for p := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				id := r.Invoke(history.Op{Process: p, Kind: history.KindNoop})
				r.Complete(id, func(op *history.Op) { op.Outcome = history.OK })
			}
		}()
	}
	wg.Wait()
	h := r.History()
	if len(h.Ops) != 800 {
		t.Fatalf("%d ops, want 800", len(h.Ops))
	}
	for _, op := range h.Ops {
		if !op.Done() || op.Complete < op.Invoke || op.Outcome != history.OK {
			t.Fatalf("bad op %+v", op)
		}
	}
}

func TestCompleteOnce(t *testing.T) {
	r := history.NewRecorder(1)
	id := r.Invoke(history.Op{Kind: history.KindNoop})
	r.Complete(id, func(op *history.Op) { op.Outcome = history.Fail })
	r.Complete(id, func(op *history.Op) { op.Outcome = history.OK })
	r.Complete(99, func(op *history.Op) { t.Fatal("fill called for an unknown op") })
	if got := r.History().Ops[0].Outcome; got != history.Fail {
		t.Fatalf("outcome %s, want the first completion's fail", got)
	}
}

func TestLoadRejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty":           "",
		"no header":       `{"type":"op","op":{"id":1,"outcome":"ok","invoke":1,"complete":2}}`,
		"two headers":     "{\"type\":\"run\"}\n{\"type\":\"run\"}",
		"bad outcome":     "{\"type\":\"run\"}\n" + `{"type":"op","op":{"id":1,"outcome":"maybe"}}`,
		"backwards":       "{\"type\":\"run\"}\n" + `{"type":"op","op":{"id":1,"outcome":"ok","invoke":5,"complete":2}}`,
		"ok never done":   "{\"type\":\"run\"}\n" + `{"type":"op","op":{"id":1,"outcome":"ok","invoke":5}}`,
		"duplicate id":    "{\"type\":\"run\"}\n" + `{"type":"op","op":{"id":1,"outcome":"unknown"}}` + "\n" + `{"type":"op","op":{"id":1,"outcome":"unknown"}}`,
		"unknown type":    "{\"type\":\"run\"}\n{\"type\":\"what\"}",
		"fault backwards": "{\"type\":\"run\"}\n" + `{"type":"fault","fault":{"kind":"k","start":5,"end":1}}`,
		"not json":        "{\"type\":\"run\"}\nnope",
		"line too long":   "{\"type\":\"run\"}\n" + strings.Repeat(" ", history.MaxLine+1),
	} {
		if _, err := history.Load(strings.NewReader(in)); err == nil {
			t.Errorf("%s: loaded, want an error", name)
		}
	}
}

func FuzzLoad(f *testing.F) {
	var buf bytes.Buffer
	if err := sample().Save(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("{\"type\":\"run\",\"seed\":3}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := history.Load(bytes.NewReader(data))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := h.Save(&out); err != nil {
			t.Fatalf("save of a loaded history: %v", err)
		}
		first := out.String()
		again, err := history.Load(&out)
		if err != nil {
			t.Fatalf("reload of a saved history: %v", err)
		}
		var second bytes.Buffer
		if err := again.Save(&second); err != nil {
			t.Fatal(err)
		}
		if second.String() != first {
			t.Fatalf("save/load not stable:\n%s\n%s", first, second.String())
		}
	})
}
