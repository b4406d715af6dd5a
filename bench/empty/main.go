// Command empty does nothing: the floor make bench compares the helpers
// with, the cost of starting a static Go program at all.
package main

func main() {}
