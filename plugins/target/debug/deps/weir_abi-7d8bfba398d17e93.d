/work/main/plugins/target/debug/deps/weir_abi-7d8bfba398d17e93.d: abi/src/lib.rs abi/src/cbor.rs abi/src/event.rs Cargo.toml

/work/main/plugins/target/debug/deps/libweir_abi-7d8bfba398d17e93.rmeta: abi/src/lib.rs abi/src/cbor.rs abi/src/event.rs Cargo.toml

abi/src/lib.rs:
abi/src/cbor.rs:
abi/src/event.rs:
Cargo.toml:

# env-dep:CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
# env-dep:CLIPPY_CONF_DIR
