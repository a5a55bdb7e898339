namespace EmailTracking.Server.Sequences;

/// <summary>
/// Refuses, before Fluid sees a template, what would make Fluid recurse deeper than a thread's stack. Fluid's parser
/// (Parlot) reads nested parentheses, brackets and block tags by recursion, and Fluid evaluates a chain of filters or
/// of and/or by recursion too; a stack overflow is no exception that can be caught but the end of the process, so
/// 3,000 nested parentheses posted by any team member took the server down. The scan reads the text once, in a loop,
/// the way Fluid reads it: only inside tags (<c>{{ }}</c>, <c>{% %}</c>), with their quoted strings as Parlot reads
/// them (a backslash escapes the next character), and skipping raw and comment blocks and inline comments
/// (<c>{% # … %}</c>) as Fluid skips them. It may count more than Fluid would, never less.
/// </summary>
public static class TemplateNesting
{
    /// <summary>
    /// How deep blocks, parentheses and brackets may nest, all together. Measured with a 1 MB stack (a thread pool
    /// thread has 1.5 MB on Linux): nested <c>{% case %}</c>, the deepest per level, overflowed between 150 and 300.
    /// </summary>
    public const int MaxDepth = 64;

    /// <summary>How many filters and and/or operators one tag may chain (a chain of 2,000 filters or 10,000 ands overflowed).</summary>
    public const int MaxChain = 64;

    public static readonly string TooDeep =
        $"Blocks ({{% if %}}, {{% for %}}, {{% case %}} …), parentheses and brackets are nested more than {MaxDepth} deep; at most {MaxDepth} levels are allowed.";

    public static readonly string TooLong =
        $"A tag chains more than {MaxChain} filters and 'and'/'or' operators; at most {MaxChain} are allowed.";

    public const string NoLiquidTag = "The {% liquid %} tag is not supported: write each tag in its own {% … %}.";

    /// <summary>Fluid's tags that hold other tags until their end tag (raw and comment are skipped whole instead).</summary>
    static readonly HashSet<string> Blocks = ["if", "unless", "case", "for", "tablerow", "capture", "ifchanged", "macro"];

    /// <summary>Why the template nests or chains too much for Fluid to read safely, or null.</summary>
    public static string? Problem(string source)
    {
        var blocks = 0;
        var i = 0;
        while (true)
        {
            var open = source.IndexOf('{', i);
            if (open < 0 || open + 1 >= source.Length) return null;
            var kind = source[open + 1];
            if (kind is not ('{' or '%'))
            {
                i = open + 1;
                continue;
            }
            var isTag = kind == '%';
            var j = open + 2;
            if (isTag)
            {
                var k = j;
                if (k < source.Length && source[k] == '-') k++;
                while (k < source.Length && char.IsWhiteSpace(source[k])) k++;
                if (k < source.Length && source[k] == '#')
                {
                    // An inline comment ends at the first "%}", quotes or not.
                    var end = source.IndexOf("%}", k, StringComparison.Ordinal);
                    if (end < 0) return null;
                    i = end + 2;
                    continue;
                }
                var nameStart = k;
                while (k < source.Length && (char.IsAsciiLetterOrDigit(source[k]) || source[k] == '_')) k++;
                var name = source[nameStart..k];
                if (name is "raw" or "comment")
                {
                    // Their text is not read as tags: it ends at the first end tag.
                    var end = source.IndexOf("%}", k, StringComparison.Ordinal);
                    if (end < 0) return null;
                    i = EndTag(source, end + 2, "end" + name);
                    if (i < 0) return null;
                    continue;
                }
                // Fluid reads the liquid tag's lines, and the text after it, in ways this scan cannot follow (and its
                // statements did not render): refused rather than guessed at.
                if (name == "liquid") return NoLiquidTag;
                if (name.StartsWith("end", StringComparison.Ordinal) && Blocks.Contains(name[3..]))
                {
                    if (blocks > 0) blocks--;
                }
                else if (Blocks.Contains(name) && ++blocks > MaxDepth)
                {
                    return TooDeep;
                }
                j = k;
            }
            var brackets = 0;
            var chain = 0;
            while (true)
            {
                if (j >= source.Length) return null; // a tag that never ends: Fluid stops there
                var c = source[j];
                if (c is '"' or '\'')
                {
                    // A quote without its closing one is no string to Parlot (Fluid stops there): read on as if it were not one.
                    var end = StringEnd(source, j);
                    j = end < 0 ? j + 1 : end + 1;
                    continue;
                }
                if (c == (isTag ? '%' : '}') && j + 1 < source.Length && source[j + 1] == '}')
                {
                    j += 2;
                    break;
                }
                if (c is '(' or '[')
                {
                    if (blocks + ++brackets > MaxDepth) return TooDeep;
                }
                else if (c is ')' or ']')
                {
                    if (brackets > 0) brackets--;
                }
                else if (c == '|')
                {
                    if (++chain > MaxChain) return TooLong;
                }
                else if (char.IsAsciiLetter(c) || c == '_')
                {
                    var start = j;
                    while (j < source.Length && (char.IsAsciiLetterOrDigit(source[j]) || source[j] is '_' or '-')) j++;
                    if (source.AsSpan(start, j - start) is "and" or "or" && ++chain > MaxChain) return TooLong;
                    continue;
                }
                j++;
            }
            i = j;
        }
    }

    /// <summary>The index of the quote that ends the string opened at <paramref name="start"/>, or -1 when none does.</summary>
    static int StringEnd(string source, int start)
    {
        var quote = source[start];
        for (var j = start + 1; j < source.Length; j++)
        {
            if (source[j] == '\\') j++;
            else if (source[j] == quote) return j;
        }
        return -1;
    }

    /// <summary>Where the text after <c>{% endNAME %}</c> (with or without "-" and spaces) begins, or -1 when there is none.</summary>
    static int EndTag(string source, int from, string name)
    {
        for (var at = source.IndexOf("{%", from, StringComparison.Ordinal); at >= 0; at = source.IndexOf("{%", at + 2, StringComparison.Ordinal))
        {
            var k = at + 2;
            if (k < source.Length && source[k] == '-') k++;
            while (k < source.Length && char.IsWhiteSpace(source[k])) k++;
            if (string.CompareOrdinal(source, k, name, 0, name.Length) != 0) continue;
            k += name.Length;
            while (k < source.Length && char.IsWhiteSpace(source[k])) k++;
            if (k < source.Length && source[k] == '-') k++;
            if (k + 1 < source.Length && source[k] == '%' && source[k + 1] == '}') return k + 2;
        }
        return -1;
    }
}
