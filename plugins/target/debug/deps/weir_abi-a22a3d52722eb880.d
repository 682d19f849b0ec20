/work/main/plugins/target/debug/deps/weir_abi-a22a3d52722eb880.d: abi/src/lib.rs abi/src/cbor.rs abi/src/event.rs Cargo.toml

/work/main/plugins/target/debug/deps/libweir_abi-a22a3d52722eb880.rmeta: abi/src/lib.rs abi/src/cbor.rs abi/src/event.rs Cargo.toml

abi/src/lib.rs:
abi/src/cbor.rs:
abi/src/event.rs:
Cargo.toml:

# env-dep:CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
# env-dep:CLIPPY_CONF_DIR
