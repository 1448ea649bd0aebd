package schema

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func goodState() State {
	return State{Broker: "na.c1.a", Domain: "na", Seq: 1, Time: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), Clients: 2,
		Links: []StateLink{{ID: "00000000-0000-4000-8000-000000000001", Peer: "na.c1.b", Up: true,
			Emulation:  &StateEmulation{Delay: "45ms", Jitter: "200µs", Loss: "1%"},
			ClassDrops: map[string]map[string]uint64{"low": {"send_queue_full": 3}}}},
		Routes: []Route{{Profile: "default", Destination: "eu", NextHop: "na.c1.b", Link: "00000000-0000-4000-8000-000000000001", Cost: 12.5,
			Path: []string{"na.c1.a", "na.c1.b", "eu"}, Exits: []RouteExit{{Broker: "na.c1.b", Link: "00000000-0000-4000-8000-000000000001"}}}},
		Subjects: []string{"orders.>"}, Profiles: []SubjectProfile{{Subject: "fast.>", Profile: "latency"}},
		Messages: map[string]uint64{"held_for_order": 5}}
}

func TestDecodeState(t *testing.T) {
	js, err := json.Marshal(goodState())
	if err != nil {
		t.Fatal(err)
	}
	st, err := DecodeState(js)
	if err != nil {
		t.Fatal(err)
	}
	if st.Broker != "na.c1.a" || len(st.Routes) != 1 || st.Routes[0].Cost != 12.5 || st.Clients != 2 || len(st.Routes[0].Exits) != 1 ||
		*st.Links[0].Emulation != (StateEmulation{Delay: "45ms", Jitter: "200µs", Loss: "1%"}) || st.Links[0].ClassDrops["low"]["send_queue_full"] != 3 || st.Messages["held_for_order"] != 5 {
		t.Errorf("decoded %+v", st)
	}
	bad := map[string]struct {
		edit func(*State)
		want error
	}{
		"broker":       {func(s *State) { s.Broker = `na.<script>` }, ErrInvalid},
		"seq":          {func(s *State) { s.Seq = 0 }, ErrInvalid},
		"time":         {func(s *State) { s.Time = time.Time{} }, ErrInvalid},
		"clients":      {func(s *State) { s.Clients = -1 }, ErrInvalid},
		"link id":      {func(s *State) { s.Links[0].ID = "X" }, ErrInvalid},
		"emulation":    {func(s *State) { s.Links[0].Emulation = &StateEmulation{Delay: strings.Repeat("9", 200) + "ms"} }, ErrInvalid},
		"drop class":   {func(s *State) { s.Links[0].ClassDrops = map[string]map[string]uint64{"urgent": {"link_down": 1}} }, ErrInvalid},
		"class reason": {func(s *State) { s.Links[0].ClassDrops = map[string]map[string]uint64{"low": {"gone": 1}} }, ErrInvalid},
		"counter":      {func(s *State) { s.Messages = map[string]uint64{"gone": 1} }, ErrInvalid},
		"route cost":   {func(s *State) { s.Routes[0].Cost = -1 }, ErrInvalid},
		"route path":   {func(s *State) { s.Routes[0].Path = []string{"na.c1.a", "eu"} }, ErrInvalid},
		"next hop":     {func(s *State) { s.Routes[0].NextHop = "" }, ErrInvalid},
		"exit broker":  {func(s *State) { s.Routes[0].Exits = []RouteExit{{Broker: "na..b", Link: s.Links[0].ID}} }, ErrInvalid},
		"exit link":    {func(s *State) { s.Routes[0].Exits = []RouteExit{{Broker: "na.c1.b", Link: "l"}} }, ErrInvalid},
		"exits":        {func(s *State) { s.Routes[0].Exits = make([]RouteExit, 4) }, ErrInvalid},
		"subject":      {func(s *State) { s.Subjects = []string{""} }, ErrInvalid},
		"subject char": {func(s *State) { s.Subjects = []string{"a\x00b"} }, ErrInvalid},
		"subjects":     {func(s *State) { s.Subjects = make([]string, MaxStateSubjects+1) }, ErrInvalid},
		"profile":      {func(s *State) { s.Profiles[0].Profile = "" }, ErrInvalid},
	}
	for name, c := range bad {
		s := goodState()
		s.Links = append([]StateLink(nil), s.Links...)
		s.Routes = append([]Route(nil), s.Routes...)
		c.edit(&s)
		js, _ := json.Marshal(s)
		if _, err := DecodeState(js); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	for name, c := range map[string]struct {
		data string
		want error
	}{
		"not json":      {"<state/>", ErrMalformed},
		"unknown field": {strings.Replace(string(js), `"clients"`, `"klients"`, 1), ErrMalformed},
		"trailing":      {string(js) + "{}", ErrMalformed},
		"too large":     {strings.Repeat(" ", MaxStateBytes+1), ErrTooLarge},
	} {
		if _, err := DecodeState([]byte(c.data)); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

// FuzzDecodeState: any input is refused with one of the sentinel errors
// or decodes to a state that validates and survives a round trip.
func FuzzDecodeState(f *testing.F) {
	js, _ := json.Marshal(goodState())
	f.Add(js)
	seeds, _ := filepath.Glob(filepath.Join("testdata", "state", "*.json"))
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := DecodeState(data)
		if err != nil {
			if sentinels(err) != 1 {
				t.Fatalf("error %v wraps %d sentinels", err, sentinels(err))
			}
			return
		}
		if err := st.Validate(); err != nil {
			t.Fatalf("decoded state fails Validate: %v", err)
		}
		again, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeState(again); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	})
}
