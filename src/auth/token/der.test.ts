import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bitString, boolean, integer, oid, sequence, time, tlv } from './der.js';

const hex = (b: Buffer) => b.toString('hex');

describe('DER encoder', () => {
  it('writes short and long lengths', () => {
    assert.equal(hex(tlv(0x04, Buffer.alloc(3))), '0403000000');
    assert.equal(hex(tlv(0x04, Buffer.alloc(127))).slice(0, 4), '047f');
    assert.equal(hex(tlv(0x04, Buffer.alloc(128))).slice(0, 6), '048180');
    assert.equal(hex(tlv(0x04, Buffer.alloc(300))).slice(0, 8), '0482012c');
    assert.equal(tlv(0x04, Buffer.alloc(70000)).length, 70000 + 5);
  });

  it('writes minimal two\'s-complement integers for unsigned values', () => {
    assert.equal(hex(integer(0)), '020100');
    assert.equal(hex(integer(2)), '020102');
    assert.equal(hex(integer(127)), '02017f');
    assert.equal(hex(integer(128)), '02020080');
    assert.equal(hex(integer(256)), '02020100');
    assert.equal(hex(integer(Buffer.from('000001ff', 'hex'))), '020201ff', 'leading zeros dropped');
    assert.equal(hex(integer(Buffer.from('ff', 'hex'))), '020200ff', 'a set top bit gets a zero byte');
    assert.equal(hex(integer(Buffer.alloc(0))), '020100');
    assert.throws(() => integer(-1), RangeError);
  });

  it('writes object identifiers in base 128', () => {
    assert.equal(hex(oid('1.2.840.10045.4.3.2')), '06082a8648ce3d040302');
    assert.equal(hex(oid('2.5.29.19')), '0603551d13');
    assert.equal(hex(oid('1.2.840.113549.1.1.11')), '06092a864886f70d01010b');
    assert.throws(() => oid('3.1'), RangeError);
    assert.throws(() => oid('1.x'), RangeError);
  });

  it('writes UTCTime before 2050 and GeneralizedTime from 2050', () => {
    assert.equal(time(new Date(Date.UTC(2024, 0, 2, 3, 4, 5))).toString('latin1'), '\x17\x0d240102030405Z');
    assert.equal(time(new Date(Date.UTC(2049, 11, 31, 23, 59, 59))).toString('latin1'), '\x17\x0d491231235959Z');
    assert.equal(time(new Date(Date.UTC(2050, 0, 1, 0, 0, 0))).toString('latin1'), '\x18\x0f20500101000000Z');
  });

  it('writes booleans, bit strings and nested sequences', () => {
    assert.equal(hex(boolean(true)), '0101ff');
    assert.equal(hex(boolean(false)), '010100');
    assert.equal(hex(bitString(Buffer.from([0x84]), 2)), '03020284');
    assert.throws(() => bitString(Buffer.alloc(1), 8), RangeError);
    assert.equal(hex(sequence(boolean(true), integer(1))), '30060101ff020101');
  });
});
