// Helpers shared by the Go benchmark programs (built together with each one).
package main

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"time"
)

func size(def int) int {
	if len(os.Args) > 1 {
		if v, err := strconv.Atoi(os.Args[1]); err == nil && v > 0 {
			return v
		}
	}
	return def
}

func msSince(t0 time.Time) float64 {
	return float64(time.Since(t0).Nanoseconds()) / 1e6
}

var vmRSS = regexp.MustCompile(`VmRSS:\s*(\d+)`)

// rssKb reads the current resident set size, the same way as the Lua and Node programs.
func rssKb() int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	m := vmRSS.FindSubmatch(data)
	if m == nil {
		return 0
	}
	v, _ := strconv.Atoi(string(m[1]))
	return v
}

func report(fields map[string]float64) {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := fields[k]
		if v == float64(int64(v)) {
			fmt.Printf("%s=%d\n", k, int64(v))
		} else {
			fmt.Printf("%s=%.3f\n", k, v)
		}
	}
}

func check(ok bool, what string) {
	if !ok {
		fmt.Fprintln(os.Stderr, "check failed: "+what)
		os.Exit(3)
	}
}
