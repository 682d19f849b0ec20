/work/main/plugins/target/release/deps/weir_abi-ffb5a908ff970a47.d: abi/src/lib.rs abi/src/cbor.rs abi/src/event.rs

/work/main/plugins/target/release/deps/libweir_abi-ffb5a908ff970a47.rlib: abi/src/lib.rs abi/src/cbor.rs abi/src/event.rs

/work/main/plugins/target/release/deps/libweir_abi-ffb5a908ff970a47.rmeta: abi/src/lib.rs abi/src/cbor.rs abi/src/event.rs

abi/src/lib.rs:
abi/src/cbor.rs:
abi/src/event.rs:
