module weir.dev/plugin

go 1.24
