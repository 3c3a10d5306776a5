// Builds hey, the HTTP load generator that Flagger's load tester image ships and its Canaries run.
module canary.dev/tools/loadtester/hey

go 1.24.0

tool github.com/rakyll/hey

require (
	github.com/rakyll/hey v0.1.5 // indirect
	golang.org/x/net v0.48.0 // indirect
	golang.org/x/text v0.33.0 // indirect
)
