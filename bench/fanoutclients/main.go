// Command fanoutclients is the load generator of bench/fanout.py: thousands of websocket clients, each
// watching one stop and checking every message it gets, cheap enough that the benchmark measures the
// server and not its own clients (Python clients cost more CPU per message than the server under test).
//
// The checks are those of bench/fanout.py's Python clients (see check.go); results are written as the
// same JSON the Python clients write, so bench/fanout.py reads either.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

type result struct {
	Connected int64           `json:"connected"`
	Messages  int64           `json:"messages"`
	Bad       int64           `json:"bad"`
	Failed    int64           `json:"failed"`
	Sample    json.RawMessage `json:"sample"`
	Latencies []float64       `json:"latencies"`
	CPUSecs   float64         `json:"cpu_s"`
	Runtime   string          `json:"runtime"`
}

func epoch(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func fromEpoch(s float64) time.Time { return time.Unix(0, int64(s*1e9)) }

func cpuSeconds() float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return float64(usage.Utime.Nano()+usage.Stime.Nano()) / 1e9
}

// main dials every client, prints "connected N failed M" once all have dialled, then reads the measured
// window ("start_at end_at", epoch seconds) from stdin: connecting 10,000 clients takes a loaded server
// longer than any fixed guess, and handshakes must not fall into the window. Clients read until end_at.
func main() {
	base := flag.String("base", "", "ws://host:port of the server")
	stopsFile := flag.String("stops-file", "", "JSON list of stop ids; a stop's index is its content code")
	count := flag.Int("count", 0, "clients to run")
	offset := flag.Int("offset", 0, "client i watches stops[(offset + i) % len(stops)]")
	out := flag.String("out", "", "where to write the results (JSON)")
	dialing := flag.Int("dialing", 100, "connections being opened at once")
	flag.Parse()

	raw, err := os.ReadFile(*stopsFile)
	if err != nil {
		fail(err)
	}
	var stops []string
	if err := json.Unmarshal(raw, &stops); err != nil || len(stops) == 0 {
		fail(fmt.Errorf("stops file must hold a non-empty JSON list of stop ids"))
	}
	checker := newChecker(stops)

	var res result
	var mu sync.Mutex // guards conns, res.Latencies and res.Sample
	var conns []*websocket.Conn
	gate := make(chan struct{}, *dialing)
	dialer := websocket.Dialer{HandshakeTimeout: 60 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 512}
	var dialled, done sync.WaitGroup
	for i := 0; i < *count; i++ {
		stopID := stops[(*offset+i)%len(stops)]
		dialled.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			gate <- struct{}{}
			conn, _, err := dialer.Dial(*base+"/ws/stops/"+stopID, http.Header{})
			<-gate
			if err != nil {
				atomic.AddInt64(&res.Failed, 1)
				dialled.Done()
				return
			}
			defer conn.Close()
			atomic.AddInt64(&res.Connected, 1)
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			dialled.Done()
			var latencies []float64
			var sample []byte
			for {
				_, message, err := conn.ReadMessage()
				if err != nil {
					// Reads end at the deadline, end_at; an error before it is the server closing on us.
					if epoch(time.Now()) < math.Float64frombits(checker.endAt.Load()) {
						atomic.AddInt64(&res.Failed, 1)
					}
					break
				}
				verdict := checker.check(stopID, message, epoch(time.Now()))
				if verdict.wrong {
					atomic.AddInt64(&res.Bad, 1)
				}
				if verdict.counted {
					atomic.AddInt64(&res.Messages, 1)
					latencies = append(latencies, verdict.latency)
					if sample == nil {
						sample = message
					}
				}
			}
			_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
				time.Now().Add(time.Second))
			mu.Lock()
			res.Latencies = append(res.Latencies, latencies...)
			if res.Sample == nil && sample != nil {
				res.Sample = sample
			}
			mu.Unlock()
		}()
	}
	dialled.Wait()
	fmt.Printf("connected %d failed %d\n", atomic.LoadInt64(&res.Connected), atomic.LoadInt64(&res.Failed))
	var startAt, endAt float64
	if _, err := fmt.Fscan(bufio.NewReader(os.Stdin), &startAt, &endAt); err != nil {
		fail(fmt.Errorf("reading the measured window from stdin: %w", err))
	}
	checker.setWindow(startAt, endAt)
	mu.Lock()
	for _, conn := range conns {
		_ = conn.SetReadDeadline(fromEpoch(endAt))
	}
	mu.Unlock()
	done.Wait()

	if res.Latencies == nil {
		res.Latencies = []float64{}
	}
	if res.Sample == nil {
		res.Sample = json.RawMessage("null")
	}
	res.CPUSecs = cpuSeconds()
	res.Runtime = "go"
	encoded, err := json.Marshal(res)
	if err == nil {
		err = os.WriteFile(*out, encoded, 0o644)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fanoutclients:", err)
	os.Exit(2)
}
