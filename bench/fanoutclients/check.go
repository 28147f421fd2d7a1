package main

import (
	"encoding/json"
	"math"
	"strings"
	"sync/atomic"
)

// contentOffsetS is bench/fanout.py's CONTENT_OFFSET_S: the publisher predicts every bus at stop k to
// arrive contentOffsetS + k seconds after the moment it wrote the prediction, so every arrival is checkable.
const contentOffsetS = 600.0

type arrival struct {
	VehicleID        string  `json:"vehicle_id"`
	PredictedArrival float64 `json:"predicted_arrival"`
	UpdatedAt        float64 `json:"updated_at"`
}

type board struct {
	Type     string    `json:"type"`
	StopID   *string   `json:"stop_id"`
	Arrivals []arrival `json:"arrivals"`
}

type checker struct {
	indexOf        map[string]int
	startAt, endAt atomic.Uint64 // math.Float64bits of the measured window, epoch seconds; set once known
}

type verdict struct {
	wrong   bool    // not this stop's board, unreadable, or an arrival time the publisher did not write
	counted bool    // a fresh update of ours inside the measured window
	latency float64 // seconds from the newest prediction reaching Redis to this message reaching the client
}

// newChecker counts nothing until setWindow.
func newChecker(stops []string) *checker {
	indexOf := make(map[string]int, len(stops))
	for i, s := range stops {
		indexOf[s] = i
	}
	c := &checker{indexOf: indexOf}
	c.setWindow(math.Inf(1), math.Inf(1))
	return c
}

func (c *checker) setWindow(startAt, endAt float64) {
	c.startAt.Store(math.Float64bits(startAt))
	c.endAt.Store(math.Float64bits(endAt))
}

// check judges one message received at `now` (epoch seconds) by a client watching stopID.
func (c *checker) check(stopID string, message []byte, now float64) verdict {
	var body board
	if err := json.Unmarshal(message, &body); err != nil || body.StopID == nil || *body.StopID != stopID {
		return verdict{wrong: true}
	}
	newest := math.Inf(-1)
	ours := 0
	expected := contentOffsetS + float64(c.indexOf[stopID])
	wrong := false
	for _, a := range body.Arrivals {
		if !strings.HasPrefix(a.VehicleID, "fan-") {
			continue
		}
		ours++
		if math.Abs(a.PredictedArrival-a.UpdatedAt-expected) > 1e-3 {
			wrong = true
		}
		newest = math.Max(newest, a.UpdatedAt)
	}
	if body.Type == "snapshot" || ours == 0 {
		return verdict{}
	}
	if math.Float64frombits(c.startAt.Load()) <= now && now <= math.Float64frombits(c.endAt.Load()) {
		return verdict{wrong: wrong, counted: true, latency: now - newest}
	}
	return verdict{wrong: wrong}
}
