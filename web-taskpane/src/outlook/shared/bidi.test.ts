import { describe, expect, it } from 'vitest';
import { contained, plain } from './bidi';

describe('plain', () => {
  it('shows every bidi control and invisible character in an address as U+FFFD', () => {
    expect(plain('\u202Emoc.knab-terces@target.test')).toBe('\uFFFDmoc.knab-terces@target.test');
    expect(plain('pay\u200Bpal.com\u200E\u2066\u2069\uFEFF\u00AD')).toBe('pay\uFFFDpal.com\uFFFD\uFFFD\uFFFD\uFFFD\uFFFD');
    expect(plain('a\u2029b')).toBe('a\uFFFDb');
  });

  it('leaves ordinary text, right-to-left scripts included, as it is', () => {
    expect(plain('Dana Scully <dana@example.com>')).toBe('Dana Scully <dana@example.com>');
    expect(plain('שלום عربي')).toBe('שלום عربي');
  });
});

describe('contained', () => {
  it('keeps an override and its own isolates, which stay inside the <bdi>', () => {
    expect(contained('Dana \u202Etset.live')).toBe('Dana \u202Etset.live');
    expect(contained('a\u2067b\u2069c')).toBe('a\u2067b\u2069c');
  });

  it('shows a closing isolate the text did not open, and paragraph separators, as U+FFFD', () => {
    expect(contained('x\u2069\u202Eabc')).toBe('x\uFFFD\u202Eabc');
    expect(contained('a\u2068b\u2069\u2069c')).toBe('a\u2068b\u2069\uFFFDc');
    expect(contained('a\u2029\u0085\u001Cb')).toBe('a\uFFFD\uFFFD\uFFFDb');
  });
});
