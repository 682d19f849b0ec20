module weir.dev/examples/router

go 1.24
