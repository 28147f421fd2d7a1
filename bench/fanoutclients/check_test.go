package main

import "testing"

func TestCheckJudgesContentAndFreshness(t *testing.T) {
	c := newChecker([]string{"A", "B"})
	c.setWindow(100, 200)
	cases := []struct {
		name    string
		stop    string
		message string
		now     float64
		want    verdict
	}{
		{"fresh update of ours", "B",
			`{"type":"update","stop_id":"B","arrivals":[{"vehicle_id":"fan-1","predicted_arrival":751,"updated_at":150},{"vehicle_id":"fan-2","predicted_arrival":751.5,"updated_at":150.5}],"server_time":150.6}`,
			151, verdict{counted: true, latency: 0.5}},
		{"another stop's board", "A", `{"type":"update","stop_id":"B","arrivals":[]}`, 151, verdict{wrong: true}},
		{"no stop at all", "A", `{"type":"update","arrivals":[]}`, 151, verdict{wrong: true}},
		{"not JSON", "A", `{"type":`, 151, verdict{wrong: true}},
		{"a time the publisher never wrote", "A",
			`{"type":"update","stop_id":"A","arrivals":[{"vehicle_id":"fan-1","predicted_arrival":751,"updated_at":150}]}`,
			151, verdict{wrong: true, counted: true, latency: 1}},
		{"outside the window: checked, not counted", "A",
			`{"type":"update","stop_id":"A","arrivals":[{"vehicle_id":"fan-1","predicted_arrival":900,"updated_at":300}]}`,
			301, verdict{}},
		{"a snapshot is not an update", "A",
			`{"type":"snapshot","stop_id":"A","arrivals":[{"vehicle_id":"fan-1","predicted_arrival":1,"updated_at":150}]}`,
			151, verdict{}},
		{"other vehicles are not ours", "A",
			`{"type":"update","stop_id":"A","arrivals":[{"vehicle_id":"V1","predicted_arrival":1,"updated_at":150}]}`,
			151, verdict{}},
	}
	for _, tc := range cases {
		got := c.check(tc.stop, []byte(tc.message), tc.now)
		if got.wrong != tc.want.wrong || got.counted != tc.want.counted || got.latency < tc.want.latency-1e-9 || got.latency > tc.want.latency+1e-9 {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestNothingIsCountedBeforeTheWindowIsKnown(t *testing.T) {
	c := newChecker([]string{"A"})
	got := c.check("A", []byte(`{"type":"update","stop_id":"A","arrivals":[{"vehicle_id":"fan-1","predicted_arrival":750,"updated_at":150}]}`), 151)
	if got.counted || got.wrong {
		t.Errorf("got %+v before the window was set", got)
	}
}
