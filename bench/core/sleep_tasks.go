// Go: N goroutines each sleeping 10 ms, joined with a WaitGroup.
package main

import (
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	n := size(100000)
	var finished int64
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			time.Sleep(10 * time.Millisecond)
			atomic.AddInt64(&finished, 1)
			wg.Done()
		}()
	}
	wg.Wait()
	elapsed := msSince(t0)
	check(finished == int64(n), "every task finished")
	report(map[string]float64{"elapsed_ms": elapsed, "rss_kb": float64(rssKb())})
}
