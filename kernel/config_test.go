package kernel

import (
	"strings"
	"testing"
	"time"
)

// withConfig applies change to the current settings and returns a function
// that restores them.
func withConfig(change func(*Config)) (restore func()) {
	old := CurrentConfig()
	c := old
	change(&c)
	if err := Configure(c); err != nil {
		panic(err)
	}
	return func() {
		if err := Configure(old); err != nil {
			panic(err)
		}
	}
}

func TestDefaultConfig(t *testing.T) {
	for _, tc := range []struct {
		env   map[string]string
		spin  time.Duration
		lvl   string
		tile  int
		noAMX bool
	}{
		{env: nil, spin: defaultSpin, tile: defaultQTileMin},
		{env: map[string]string{"TERSE_SPIN_US": "0"}, spin: 0, tile: defaultQTileMin},
		{env: map[string]string{"TERSE_SPIN_US": "250", "TERSE_KERNEL": "generic"}, spin: 250 * time.Microsecond, lvl: "generic", tile: defaultQTileMin},
		{env: map[string]string{"TERSE_SPIN_US": "-4"}, spin: defaultSpin, tile: defaultQTileMin},
		{env: map[string]string{"TERSE_SPIN_US": "x"}, spin: defaultSpin, tile: defaultQTileMin},
		{env: map[string]string{"TERSE_QTILEMIN": "0", "TERSE_NOAMX": "1"}, spin: defaultSpin, tile: 0, noAMX: true},
		{env: map[string]string{"TERSE_QTILEMIN": "5"}, spin: defaultSpin, tile: 5},
		{env: map[string]string{"TERSE_QTILEMIN": "-1"}, spin: defaultSpin, tile: defaultQTileMin},
		{env: map[string]string{"TERSE_QTILEMIN": "two"}, spin: defaultSpin, tile: defaultQTileMin},
	} {
		c := defaultConfig(func(k string) string { return tc.env[k] })
		if c.Spin != tc.spin || c.Level != tc.lvl || c.TileRows != defaultTileRows || c.KBlock != defaultKBlock ||
			c.SmallWork != defaultSmallWork || c.QMaxBatch != qMaxN || c.QTileMin != tc.tile || c.NoAMX != tc.noAMX || c.QDisabled {
			t.Errorf("env %v: %+v", tc.env, c)
		}
	}
}

func TestConfigure(t *testing.T) {
	defer withConfig(func(*Config) {})() // restore whatever the tests ran with
	base := DefaultConfig()
	base.Level = ""
	for _, tc := range []struct {
		name   string
		change func(*Config)
		err    string // "" valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"threads", func(c *Config) { c.Threads = 3 }, ""},
		{"threads capped", func(c *Config) { c.Threads = 1 << 20 }, ""},
		{"no spin", func(c *Config) { c.Spin = 0 }, ""},
		{"negative spin", func(c *Config) { c.Spin = -time.Microsecond }, "spin"},
		{"tile rows", func(c *Config) { c.TileRows = 6 }, "tile rows 6"},
		{"k block", func(c *Config) { c.KBlock = 0 }, "k block 0"},
		{"small work", func(c *Config) { c.SmallWork = -1 }, "small work"},
		{"q max", func(c *Config) { c.QMaxBatch = -1 }, "max batch"},
		{"q tile min", func(c *Config) { c.QTileMin = -1 }, "decode tile min"},
		{"level", func(c *Config) { c.Level = "sse9" }, `unknown level "sse9"`},
		{"generic", func(c *Config) { c.Level = "generic" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.change(&c)
			before := CurrentConfig()
			err := Configure(c)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Configure: %v, want an error with %q", err, tc.err)
				}
				if CurrentConfig() != before {
					t.Error("a rejected config changed the settings")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := CurrentConfig()
			want := *normalize(c)
			if got != want || Threads() != want.Threads || Threads() > maxThreads {
				t.Errorf("settings %+v, want %+v", got, want)
			}
			if c.Level == "generic" && active != levelGeneric {
				t.Errorf("level %v after Configure with Level generic", active)
			}
		})
	}
}

func TestSetThreadsKeepsKnobs(t *testing.T) {
	defer withConfig(func(c *Config) { c.TileRows, c.QDisabled = 8, true })()
	SetThreads(2)
	if c := CurrentConfig(); c.Threads != 2 || c.TileRows != 8 || !c.QDisabled {
		t.Errorf("after SetThreads(2): %+v", c)
	}
}
