//! The canonical bytes of a value, and a serde `Serializer` that streams them straight
//! into a hash: the trace hashes every message and timer this way, without a buffer.
//!
//! The encoding is fixed-width, so it costs a few instructions per field: integers
//! little-endian at their own width (`u8` 1 byte ... `u128` 16), `bool` one byte, `char`
//! four, floats their IEEE bits, an enum variant its index as a `u32`, `Option` a tag
//! byte then the value, strings, byte strings, sequences and maps their length as a `u64`
//! then their items, structs and tuples their fields in order, units nothing. `usize`
//! reaches serde as `u64`, so nothing depends on pointer width.
//!
//! It never allocates on the hashing path and never sees time, nodes or the trace;
//! values whose length is unknown up front (a `serialize_seq(None)`) are refused.

use std::fmt;

use serde::ser::{self, Serialize};

use crate::hash::{Hash64, Payload};

/// Feeds `value`'s canonical bytes into `hash` as one payload.
#[inline]
pub fn hash_value<T: Serialize + ?Sized>(hash: &mut Hash64, value: &T) {
    let mut sink = Sink {
        out: hash.payload(),
    };
    value
        .serialize(&mut sink)
        .expect("values with a known shape always serialise");
    sink.out.finish();
}

/// The canonical bytes of `value` in a buffer (for tests and tools that show them).
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut sink = Sink { out: Vec::new() };
    value
        .serialize(&mut sink)
        .expect("values with a known shape always serialise");
    sink.out
}

/// Where canonical bytes go: a hash payload, or a buffer.
pub trait Out {
    fn byte(&mut self, byte: u8);
    /// The low `len` bytes of `bytes`, little-endian; `len` at most 8.
    fn word(&mut self, bytes: u64, len: u32);
    fn bytes(&mut self, bytes: &[u8]);
}

impl Out for Payload<'_> {
    #[inline]
    fn byte(&mut self, byte: u8) {
        Payload::byte(self, byte);
    }

    #[inline]
    fn word(&mut self, bytes: u64, len: u32) {
        self.write_word(bytes, len);
    }

    #[inline]
    fn bytes(&mut self, bytes: &[u8]) {
        self.write(bytes);
    }
}

impl Out for Vec<u8> {
    fn byte(&mut self, byte: u8) {
        self.push(byte);
    }

    fn word(&mut self, bytes: u64, len: u32) {
        self.extend_from_slice(&bytes.to_le_bytes()[..len as usize]);
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

struct Sink<O: Out> {
    out: O,
}

impl<O: Out> Sink<O> {
    #[inline]
    fn length(&mut self, len: Option<usize>) -> Result<(), Error> {
        let len = len.ok_or_else(|| Error("a sequence of unknown length".into()))?;
        self.out.word(len as u64, 8);
        Ok(())
    }
}

impl<O: Out> ser::Serializer for &mut Sink<O> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out.byte(v as u8);
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.out.byte(v as u8);
        Ok(())
    }

    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.out.word(v as u16 as u64, 2);
        Ok(())
    }

    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.out.word(v as u32 as u64, 4);
        Ok(())
    }

    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.out.word(v as u64, 8);
        Ok(())
    }

    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.serialize_u128(v as u128)
    }

    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.out.byte(v);
        Ok(())
    }

    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.out.word(v as u64, 2);
        Ok(())
    }

    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.out.word(v as u64, 4);
        Ok(())
    }

    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.out.word(v, 8);
        Ok(())
    }

    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.out.word(v as u64, 8);
        self.out.word((v >> 64) as u64, 8);
        Ok(())
    }

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.out.word(v.to_bits() as u64, 4);
        Ok(())
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.out.word(v.to_bits(), 8);
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.out.word(v as u64, 4);
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.serialize_bytes(v.as_bytes())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.out.word(v.len() as u64, 8);
        self.out.bytes(v);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.out.byte(0);
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        self.out.byte(1);
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        variant_index: u32,
        _variant: &'static str,
    ) -> Result<(), Error> {
        self.out.word(variant_index as u64, 4);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        variant_index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.out.word(variant_index as u64, 4);
        value.serialize(self)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self, Error> {
        self.length(len)?;
        Ok(self)
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self, Error> {
        Ok(self)
    }

    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self, Error> {
        Ok(self)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        variant_index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, Error> {
        self.out.word(variant_index as u64, 4);
        Ok(self)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self, Error> {
        self.length(len)?;
        Ok(self)
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self, Error> {
        Ok(self)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        variant_index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, Error> {
        self.out.word(variant_index as u64, 4);
        Ok(self)
    }
}

/// Compound values are their parts in order: no separators.
macro_rules! compound {
    ($trait:ident, $method:ident $(, $key:ident)?) => {
        impl<O: Out> ser::$trait for &mut Sink<O> {
            type Ok = ();
            type Error = Error;

            fn $method<T: Serialize + ?Sized>(&mut self, $($key: &'static str,)? value: &T) -> Result<(), Error> {
                $(let _ = $key;)?
                value.serialize(&mut **self)
            }

            fn end(self) -> Result<(), Error> {
                Ok(())
            }
        }
    };
}

compound!(SerializeSeq, serialize_element);
compound!(SerializeTuple, serialize_element);
compound!(SerializeTupleStruct, serialize_field);
compound!(SerializeTupleVariant, serialize_field);
compound!(SerializeStruct, serialize_field, key);
compound!(SerializeStructVariant, serialize_field, key);

impl<O: Out> ser::SerializeMap for &mut Sink<O> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        key.serialize(&mut **self)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut **self)
    }

    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    enum Shape {
        Unit,
        Newtype(i64),
        Tuple(u8, i16, char),
        Struct {
            name: String,
            bytes: Vec<u8>,
            maybe: Option<u128>,
            map: BTreeMap<u32, bool>,
            float: f64,
            wide: i128,
            small: f32,
        },
    }

    fn streamed<T: Serialize>(value: &T) -> u64 {
        let mut hash = Hash64::new();
        hash_value(&mut hash, value);
        hash.finish()
    }

    fn buffered<T: Serialize>(value: &T) -> u64 {
        let mut hash = Hash64::new();
        let mut payload = hash.payload();
        payload.write(&to_bytes(value));
        payload.finish();
        hash.finish()
    }

    fn shapes() -> Vec<Shape> {
        vec![
            Shape::Unit,
            Shape::Newtype(-1),
            Shape::Newtype(i64::MIN),
            Shape::Tuple(255, -300, 'é'),
            Shape::Struct {
                name: "a longer name that spans several words".into(),
                bytes: (0..=200).collect(),
                maybe: Some(u128::MAX),
                map: [(1, true), (300, false), (u32::MAX, true)].into(),
                float: -0.5,
                wide: i128::MIN,
                small: 3.25,
            },
            Shape::Struct {
                name: String::new(),
                bytes: Vec::new(),
                maybe: None,
                map: BTreeMap::new(),
                float: f64::NAN,
                wide: 0,
                small: 0.0,
            },
        ]
    }

    #[test]
    fn streaming_hashes_exactly_the_buffered_bytes() {
        for value in &shapes() {
            assert_eq!(streamed(value), buffered(value));
        }
        for n in [0u64, 127, 128, u32::MAX as u64, u64::MAX] {
            assert_eq!(streamed(&n), buffered(&n), "{n}");
            assert_eq!(streamed(&(n as i64)), buffered(&(n as i64)), "{n}");
        }
    }

    #[test]
    fn the_encoding_is_fixed_width_little_endian_as_documented() {
        assert_eq!(
            to_bytes(&Shape::Newtype(-2)),
            [1, 0, 0, 0, 254, 255, 255, 255, 255, 255, 255, 255]
        );
        assert_eq!(
            to_bytes(&Shape::Tuple(7, 1, 'A')),
            [2, 0, 0, 0, 7, 1, 0, 65, 0, 0, 0]
        );
        assert_eq!(to_bytes(&Some(true)), [1, 1]);
        assert_eq!(to_bytes("ab"), [2, 0, 0, 0, 0, 0, 0, 0, b'a', b'b']);
        assert_eq!(to_bytes(&vec![3u16]), [1, 0, 0, 0, 0, 0, 0, 0, 3, 0]);
    }

    #[test]
    fn different_values_hash_differently() {
        assert_ne!(streamed(&Shape::Newtype(1)), streamed(&Shape::Newtype(2)));
        assert_ne!(streamed(&Shape::Unit), streamed(&Shape::Newtype(0)));
        assert_ne!(streamed(&Some(0u8)), streamed(&None::<u8>));
    }
}
