// Go: 8 producer goroutines send N/8 values each into one chan int of capacity
// 1024; one consumer drains it until it is closed after the last producer.
package main

import (
	"sync"
	"time"
)

func main() {
	n := size(1000000)
	const producers = 8
	per := n / producers
	ch := make(chan int, 1024)
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(producers)
	for p := 0; p < producers; p++ {
		go func() {
			for i := 1; i <= per; i++ {
				ch <- i
			}
			wg.Done()
		}()
	}
	go func() { wg.Wait(); close(ch) }()
	sum, count := 0, 0
	for v := range ch {
		sum += v
		count++
	}
	elapsed := msSince(t0)
	check(count == per*producers, "number of values received")
	check(sum == producers*per*(per+1)/2, "sum of values received")
	report(map[string]float64{"elapsed_ms": elapsed})
}
