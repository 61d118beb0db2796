// Go: memory of N goroutines all blocked receiving on one channel, above the
// process's own baseline just before they start.
package main

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	n := size(100000)
	ch := make(chan int)
	var woken int64
	var wg sync.WaitGroup
	runtime.GC()
	base := rssKb()
	t0 := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			if _, ok := <-ch; !ok {
				atomic.AddInt64(&woken, 1)
			}
			wg.Done()
		}()
	}
	elapsed := msSince(t0)
	runtime.GC()
	rss := rssKb()

	close(ch)
	wg.Wait()
	check(woken == int64(n), "every blocked goroutine woke on close")
	report(map[string]float64{
		"elapsed_ms":     elapsed,
		"rss_kb":         float64(rss),
		"base_rss_kb":    float64(base),
		"per_task_bytes": float64((rss - base) * 1024 / n),
	})
}
