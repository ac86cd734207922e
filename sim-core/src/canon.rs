//! The canonical bytes of a value, streamed straight into a hash: a serde `Serializer`
//! that writes postcard's encoding (varints, zig-zag signed integers, length-prefixed
//! strings and sequences, variant indexes) into a `hash::Payload` without building a
//! buffer. The trace hashes every message this way; the bytes are exactly
//! `postcard::to_allocvec`'s, which a test checks.
//!
//! It never allocates and never sees time, nodes or the trace; values whose length is
//! unknown up front (a `serialize_seq(None)`) are refused, as postcard refuses them.

use std::fmt;

use serde::ser::{self, Serialize};

use crate::hash::{Hash64, Payload};

/// Feeds `value`'s canonical bytes into `hash` as one payload.
#[inline]
pub fn hash_value<T: Serialize + ?Sized>(hash: &mut Hash64, value: &T) {
    let mut sink = Sink {
        payload: hash.payload(),
    };
    value
        .serialize(&mut sink)
        .expect("values with a known shape always serialise");
    sink.payload.finish();
}

/// The canonical bytes of `value` in a buffer (for disks and tests).
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("values with a known shape always serialise")
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

struct Sink<'a> {
    payload: Payload<'a>,
}

impl Sink<'_> {
    #[inline]
    fn varint(&mut self, mut value: u128) {
        loop {
            let low = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                self.payload.byte(low);
                return;
            }
            self.payload.byte(low | 0x80);
        }
    }

    #[inline]
    fn varint64(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.payload.byte(value as u8 | 0x80);
            value >>= 7;
        }
        self.payload.byte(value as u8);
    }

    #[inline]
    fn length(&mut self, len: Option<usize>) -> Result<(), Error> {
        let len = len.ok_or_else(|| Error("a sequence of unknown length".into()))?;
        self.varint64(len as u64);
        Ok(())
    }
}

fn zig_zag(value: i128) -> u128 {
    ((value << 1) ^ (value >> 127)) as u128
}

impl ser::Serializer for &mut Sink<'_> {
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
        self.payload.byte(v as u8);
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.payload.byte(v as u8);
        Ok(())
    }

    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.varint(zig_zag(v as i128));
        Ok(())
    }

    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.varint(zig_zag(v as i128));
        Ok(())
    }

    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.varint(zig_zag(v as i128));
        Ok(())
    }

    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.varint(zig_zag(v));
        Ok(())
    }

    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.payload.byte(v);
        Ok(())
    }

    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.varint64(v as u64);
        Ok(())
    }

    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.varint64(v as u64);
        Ok(())
    }

    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.varint64(v);
        Ok(())
    }

    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.varint(v);
        Ok(())
    }

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.payload.write(&v.to_bits().to_le_bytes());
        Ok(())
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.payload.write(&v.to_bits().to_le_bytes());
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        let mut buf = [0u8; 4];
        self.serialize_str(v.encode_utf8(&mut buf))
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.serialize_bytes(v.as_bytes())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.varint64(v.len() as u64);
        self.payload.write(v);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.payload.byte(0);
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        self.payload.byte(1);
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
        self.varint64(variant_index as u64);
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
        self.varint64(variant_index as u64);
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
        self.varint64(variant_index as u64);
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
        self.varint64(variant_index as u64);
        Ok(self)
    }
}

/// Compound values are their parts in order: postcard writes no separators.
macro_rules! compound {
    ($trait:ident, $method:ident $(, $key:ident)?) => {
        impl ser::$trait for &mut Sink<'_> {
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

impl ser::SerializeMap for &mut Sink<'_> {
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

    #[test]
    fn streaming_hashes_exactly_postcards_bytes() {
        let values = vec![
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
        ];
        for value in &values {
            assert_eq!(streamed(value), buffered(value));
        }
        for n in [0u64, 127, 128, 16_383, 16_384, u64::MAX] {
            assert_eq!(streamed(&n), buffered(&n), "{n}");
            assert_eq!(streamed(&(n as i64)), buffered(&(n as i64)), "{n}");
        }
    }

    #[test]
    fn different_values_hash_differently() {
        assert_ne!(streamed(&Shape::Newtype(1)), streamed(&Shape::Newtype(2)));
        assert_ne!(streamed(&Shape::Unit), streamed(&Shape::Newtype(0)));
    }
}
