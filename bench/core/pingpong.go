// Go: N round trips between two goroutines over two unbuffered chan int.
package main

import "time"

func main() {
	n := size(1000000)
	ping, pong := make(chan int), make(chan int)
	t0 := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			v := <-ping
			pong <- v + 1
		}
	}()
	sum := 0
	for i := 1; i <= n; i++ {
		ping <- i
		sum += <-pong
	}
	elapsed := msSince(t0)
	check(sum == n*(n+1)/2+n, "sum of pongs")
	report(map[string]float64{"elapsed_ms": elapsed})
}
