// Command hog uses resources on purpose, for the resource-control tests:
// "hog alloc N" allocates and touches N megabytes (then sleeps); "hog
// spin" keeps one CPU busy.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: hog alloc MB | hog spin")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "alloc":
		mb := 300
		if len(os.Args) > 2 {
			if n, err := strconv.Atoi(os.Args[2]); err == nil {
				mb = n
			}
		}
		fmt.Printf("allocating %dM\n", mb)
		var keep [][]byte
		for i := 0; i < mb; i += 10 {
			b := make([]byte, 10<<20)
			for j := range b {
				if j%4096 == 0 {
					b[j] = 1
				}
			}
			keep = append(keep, b)
		}
		fmt.Printf("allocated %dM\n", mb)
		time.Sleep(time.Hour)
		_ = keep
	case "spin":
		fmt.Println("spinning")
		x := 0
		for {
			x++
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}
