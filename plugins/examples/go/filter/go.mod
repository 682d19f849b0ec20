module weir.dev/examples/filter

go 1.24
