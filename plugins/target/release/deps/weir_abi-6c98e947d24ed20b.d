/work/main/plugins/target/release/deps/weir_abi-6c98e947d24ed20b.d: abi/src/lib.rs abi/src/cbor.rs abi/src/event.rs

/work/main/plugins/target/release/deps/weir_abi-6c98e947d24ed20b: abi/src/lib.rs abi/src/cbor.rs abi/src/event.rs

abi/src/lib.rs:
abi/src/cbor.rs:
abi/src/event.rs:
