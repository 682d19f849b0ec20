module weir.dev/examples/counter

go 1.24
