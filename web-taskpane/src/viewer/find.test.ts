import { describe, expect, it } from 'vitest';
import { findAll, layout, nextMatch, normalizeQuery, pieceRanges } from './find';

describe('layout', () => {
  it('folds case, ligatures and white space, and remembers where each character came from', () => {
    const page = layout([{ text: 'The  ﬁgures', eol: true }, { text: 'ARE\there' }]);
    expect(page.text).toBe('the figures are here');
    // "f" and "i" both come from the ligature, character 5 of the first piece; the line end is no piece.
    expect(page.origin[4]).toEqual([0, 5, 6]);
    expect(page.origin[5]).toEqual([0, 5, 6]);
    expect(page.origin[11]).toEqual([-1, 0, 0]);
    expect(page.origin[12]).toEqual([1, 0, 1]);
  });

  it('finds a word whatever accents it carries and however they are stored', () => {
    const composed = layout([{ text: 'Café Crème' }]);
    const decomposed = layout([{ text: 'Cafe\u0301 Cre\u0300me' }]);
    expect(composed.text).toBe('cafe creme');
    expect(decomposed.text).toBe('cafe creme');
    expect(findAll('CAFÉ', [decomposed])).toEqual([{ page: 1, start: 0, end: 4 }]);
    // The accent stored apart is left out of the compared form, but marked with the word it is in.
    expect([...pieceRanges(decomposed, findAll('creme', [decomposed])[0]!)]).toEqual([[0, [6, 12]]]);
  });

  it('keeps a character outside the basic plane whole', () => {
    const page = layout([{ text: 'a 𝐀𝐁 b' }]);
    // Mathematical bold A and B fold to "a" and "b"; each came from two UTF-16 units.
    expect(page.text).toBe('a ab b');
    expect(page.origin[2]).toEqual([0, 2, 4]);
    expect([...pieceRanges(page, findAll('ab', [page])[0]!)]).toEqual([[0, [2, 6]]]);
  });

  it('leaves no space at the start and none twice', () => {
    expect(layout([{ text: '  a ', eol: true }, { text: ' b' }]).text).toBe('a b');
  });
});

describe('findAll', () => {
  const pages = [
    layout([{ text: 'Quarterly pricing for the grid', eol: true }, { text: 'The terms are in the appendix.' }]),
    layout([{ text: 'Appendix: ' }, { text: 'Terms', eol: true }, { text: 'and conditions' }]),
  ];

  it('finds every match on every page, whatever the case', () => {
    expect(findAll('TERMS', pages)).toEqual([
      { page: 1, start: 35, end: 40 },
      { page: 2, start: 10, end: 15 },
    ]);
    expect(findAll('appendix', pages).map((m) => m.page)).toEqual([1, 2]);
  });

  it('finds words across a line end and a piece boundary', () => {
    expect(findAll('terms and', pages)).toEqual([{ page: 2, start: 10, end: 19 }]);
    expect(findAll('grid the', pages)).toEqual([{ page: 1, start: 26, end: 34 }]);
  });

  it('finds nothing for an empty or blank query, and no overlapping matches', () => {
    expect(findAll('', pages)).toEqual([]);
    expect(findAll('   ', pages)).toEqual([]);
    expect(findAll('aa', [layout([{ text: 'aaaa' }])])).toHaveLength(2);
    expect(normalizeQuery('  Grid\u00a0 Pricing ')).toBe('grid pricing');
  });
});

describe('nextMatch', () => {
  const matches = [
    { page: 1, start: 0, end: 1 },
    { page: 3, start: 0, end: 1 },
    { page: 3, start: 5, end: 6 },
    { page: 7, start: 0, end: 1 },
  ];

  it('starts from the page being read', () => {
    expect(nextMatch(matches, null, 1, 2)).toBe(1);
    expect(nextMatch(matches, null, 1, 8)).toBe(0);
    expect(nextMatch(matches, null, -1, 5)).toBe(2);
    expect(nextMatch(matches, null, -1, 1)).toBe(0);
  });

  it('goes round at either end', () => {
    expect(nextMatch(matches, 3, 1, 7)).toBe(0);
    expect(nextMatch(matches, 0, -1, 1)).toBe(3);
    expect(nextMatch([], null, 1, 1)).toBeNull();
  });
});

describe('pieceRanges', () => {
  it('marks the characters of each piece a match covers, skipping line ends', () => {
    const page = layout([{ text: 'see the Terms', eol: true }, { text: 'and conditions' }]);
    const [match] = findAll('terms and', [page]);
    expect([...pieceRanges(page, match!)]).toEqual([
      [0, [8, 13]],
      [1, [0, 3]],
    ]);
  });
});
