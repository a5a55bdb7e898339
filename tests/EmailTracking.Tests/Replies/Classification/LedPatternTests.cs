using System.Text;
using System.Text.RegularExpressions;
using EmailTracking.Server.Replies.Classification;
using EmailTracking.Tests.Classification;
using MimeKit;
using Xunit.Abstractions;

namespace EmailTracking.Tests.Replies.Classification;

/// <summary>
/// The out-of-office rules' large alternations are tried only where one of their leads starts (<see cref="LedPattern"/>).
/// That finds the same match as the whole pattern only if every alternative starts with a lead: these tests draw random
/// phrases from each alternative of each pattern, put them in text, and compare the two.
/// </summary>
public sealed class LedPatternTests(ITestOutputHelper output)
{
    public static TheoryData<string> Patterns => ["MachineStatement", "AutomaticStatement", "Absence", "Departure"];

    private static (string Pattern, LedPattern Led) Get(string name) => name switch
    {
        "MachineStatement" => (AutoReplyRules.MachineStatementPattern, AutoReplyRules.MachineStatement),
        "AutomaticStatement" => (AutoReplyRules.AutomaticStatementPattern, AutoReplyRules.AutomaticStatement),
        "Absence" => (AutoReplyRules.AbsencePattern, AutoReplyRules.Absence),
        "Departure" => (AutoReplyRules.DeparturePattern, AutoReplyRules.Departure),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    [Theory]
    [MemberData(nameof(Patterns))]
    public void Every_alternative_starts_with_a_lead(string name)
    {
        var (pattern, led) = Get(name);
        var whole = new Regex(pattern);
        var alternatives = Sampler.Alternatives(pattern);
        var rng = new Random(20261202);
        var tried = 0;
        var missed = new List<string>();
        foreach (var alternative in alternatives)
        {
            var matchedOnce = false;
            for (var i = 0; i < 60; i++)
            {
                var phrase = Sampler.Sample(alternative, rng);
                // Alone, after other words, and after a word that runs into it (where \b must keep it from matching).
                foreach (var text in new[] { phrase, "thanks for the note. " + phrase + " see you", "x" + phrase })
                {
                    var expected = whole.Match(text);
                    if (!expected.Success)
                        continue;
                    matchedOnce = true;
                    tried++;
                    var actual = led.Match(text);
                    if (!actual.Success || actual.Index != expected.Index || actual.Length != expected.Length)
                        missed.Add($"\"{text}\": the pattern finds \"{expected.Value}\" at {expected.Index}, led {(actual.Success ? $"\"{actual.Value}\" at {actual.Index}" : "nothing")}");
                }
            }
            // A phrase drawn from an alternative matches the pattern unless a lookaround of the draw refused it; every
            // alternative must have been tried at least once.
            Assert.True(matchedOnce, $"no phrase drawn from the alternative {alternative} matched the pattern");
        }
        output.WriteLine($"{name}: {alternatives.Count} alternatives, {tried} phrases compared, {missed.Count} different");
        Assert.Empty(missed.Take(20));
    }

    [Theory]
    [MemberData(nameof(Patterns))]
    public void Finds_what_the_whole_pattern_finds_in_every_fixture_and_sisimai_message(string name)
    {
        var (pattern, led) = Get(name);
        var whole = new Regex(pattern);
        var files = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Replies", "Fixtures"), "*.eml", SearchOption.AllDirectories)
            .Concat(Directory.GetFiles(SharedData.Path("sisimai"), "*.eml", SearchOption.AllDirectories)).ToList();
        var found = 0;
        foreach (var file in files)
        {
            using var message = MimeMessage.Load(file);
            var text = string.Join("\n", message.BodyParts.OfType<TextPart>().Select(p => p.Text)).ToLowerInvariant();
            // As much as the classifier reads of a text (TextTools.Squeeze with 2,500 characters, and more).
            if (text.Length > 5000) text = text[..5000];
            var expected = whole.Match(text);
            var actual = led.Match(text);
            Assert.True(expected.Success == actual.Success && expected.Index == actual.Index && expected.Length == actual.Length,
                $"{Path.GetFileName(file)}: the pattern finds {(expected.Success ? $"\"{expected.Value}\" at {expected.Index}" : "nothing")}, led {(actual.Success ? $"\"{actual.Value}\" at {actual.Index}" : "nothing")}");
            if (expected.Success) found++;
        }
        output.WriteLine($"{name}: {files.Count} messages, {found} with a match");
        Assert.True(files.Count > 600);
    }

    [Fact]
    public void A_pattern_that_is_not_anchored_is_refused() =>
        Assert.Throws<ArgumentException>(() => new LedPattern(new Regex("out of office"), "out"));

    [Fact]
    public void Leads_in_other_scripts_are_found_in_order_with_the_ascii_ones()
    {
        var led = new LedPattern(new Regex(@"\G(?:不在です|i'm away)"), "不在", "i'm");
        Assert.Equal(3, led.Match("ok 不在です, i'm away").Index);
        Assert.Equal(3, led.Match("ok i'm away 不在です").Index);
        Assert.False(led.Match("ok i'm here, 不在").Success);
        Assert.False(led.Match("").Success);
    }

    /// <summary>
    /// Draws random strings from a regular expression, for the constructs the classifier's patterns use: literals and
    /// escapes, classes, groups, alternation, greedy and lazy quantifiers. Lookarounds and anchors are skipped (a draw
    /// they refuse does not match, and the test leaves it out).
    /// </summary>
    private static class Sampler
    {
        public static List<string> Alternatives(string pattern)
        {
            var parts = new List<string>();
            var depth = 0;
            var inClass = false;
            var start = 0;
            for (var i = 0; i < pattern.Length; i++)
            {
                var c = pattern[i];
                if (c == '\\') { i++; continue; }
                if (inClass) { if (c == ']') inClass = false; continue; }
                if (c == '[') inClass = true;
                else if (c == '(') depth++;
                else if (c == ')') depth--;
                else if (c == '|' && depth == 0) { parts.Add(pattern[start..i]); start = i + 1; }
            }
            parts.Add(pattern[start..]);
            return parts;
        }

        public static string Sample(string pattern, Random rng)
        {
            var sb = new StringBuilder();
            var at = 0;
            SampleAlternation(pattern, ref at, rng, sb);
            return sb.ToString();
        }

        private static void SampleAlternation(string p, ref int at, Random rng, StringBuilder sb)
        {
            // Read every branch (to move past them), keep the output of one chosen at random.
            var branches = new List<string>();
            while (true)
            {
                var branch = new StringBuilder();
                SampleSequence(p, ref at, rng, branch);
                branches.Add(branch.ToString());
                if (at < p.Length && p[at] == '|') { at++; continue; }
                break;
            }
            sb.Append(branches[rng.Next(branches.Count)]);
        }

        private static void SampleSequence(string p, ref int at, Random rng, StringBuilder sb)
        {
            while (at < p.Length && p[at] is not ('|' or ')'))
            {
                var start = at;
                var atom = new StringBuilder();
                var emit = SampleAtom(p, ref at, rng, atom);
                var (min, max) = Quantifier(p, ref at);
                if (!emit) continue;
                var count = min + rng.Next(Math.Min(max, min + 2) - min + 1);
                // Each repetition is drawn again: (?:\S+ ){0,3} gives different words.
                for (var k = 0; k < count; k++)
                {
                    if (k > 0)
                    {
                        atom.Clear();
                        var again = start;
                        SampleAtom(p, ref again, rng, atom);
                    }
                    sb.Append(atom);
                }
            }
        }

        /// <summary>Draws one atom into <paramref name="sb"/>; false for a zero-width one (anchor, lookaround).</summary>
        private static bool SampleAtom(string p, ref int at, Random rng, StringBuilder sb)
        {
            var c = p[at];
            if (c == '(')
            {
                at++;
                var lookaround = false;
                if (p[at] == '?')
                {
                    if (p[at + 1] == ':') at += 2;
                    else if (p[at + 1] is '=' or '!') { at += 2; lookaround = true; }
                    else if (p[at + 1] == '<' && p[at + 2] is '=' or '!') { at += 3; lookaround = true; }
                    else throw new NotSupportedException($"group at {at} in {p}");
                }
                var inner = new StringBuilder();
                SampleAlternation(p, ref at, rng, inner);
                if (p[at] != ')') throw new FormatException($"no ) at {at} in {p}");
                at++;
                if (lookaround) return false;
                sb.Append(inner);
                return true;
            }
            if (c == '[')
            {
                sb.Append(SampleClass(p, ref at, rng));
                return true;
            }
            if (c == '\\')
            {
                var e = p[at + 1];
                at += 2;
                switch (e)
                {
                    case 'b' or 'B' or 'G' or 'A' or 'z' or 'Z': return false;
                    case 's': sb.Append(' '); return true;
                    case 'S' or 'w': sb.Append((char)('a' + rng.Next(26))); return true;
                    case 'W': sb.Append(' '); return true;
                    case 'd': sb.Append((char)('0' + rng.Next(10))); return true;
                    case 'u': sb.Append((char)Convert.ToInt32(p.Substring(at, 4), 16)); at += 4; return true;
                    case 'n': sb.Append('\n'); return true;
                    case 't': sb.Append('\t'); return true;
                    default: sb.Append(e); return true;
                }
            }
            at++;
            if (c is '^' or '$') return false;
            sb.Append(c == '.' ? 'x' : c);
            return true;
        }

        private static string SampleClass(string p, ref int at, Random rng)
        {
            at++;
            var negated = p[at] == '^';
            if (negated) at++;
            var members = new List<char>();
            var first = true;
            while (first || p[at] != ']')
            {
                first = false;
                char lo;
                if (p[at] == '\\')
                {
                    var e = p[at + 1];
                    at += 2;
                    if (e == 'u') { lo = (char)Convert.ToInt32(p.Substring(at, 4), 16); at += 4; }
                    else if (e is 's' or 'W') { members.Add(' '); continue; }
                    else if (e is 'S' or 'w') { members.Add('a'); continue; }
                    else if (e == 'd') { members.Add('1'); continue; }
                    else if (e == 'n') { members.Add('\n'); continue; }
                    else if (e == 't') { members.Add('\t'); continue; }
                    else lo = e;
                }
                else lo = p[at++];
                if (p[at] == '-' && p[at + 1] != ']')
                {
                    at++;
                    var hi = p[at] == '\\' ? p[(at += 2) - 1] : p[at++];
                    for (var ch = lo; ch <= hi; ch++) members.Add(ch);
                }
                else members.Add(lo);
            }
            at++;
            // A negated class: a letter it does not name (the patterns negate only \n and the like).
            if (negated) return "x";
            return members[rng.Next(members.Count)].ToString();
        }

        private static (int Min, int Max) Quantifier(string p, ref int at)
        {
            if (at >= p.Length) return (1, 1);
            (int, int)? q = p[at] switch
            {
                '?' => (0, 1),
                '*' => (0, 3),
                '+' => (1, 3),
                _ => null,
            };
            if (q is { } simple)
            {
                at++;
            }
            else if (p[at] == '{' && p.IndexOf('}', at) is var close and > 0 && Regex.IsMatch(p[(at + 1)..close], @"^\d+(,\d*)?$"))
            {
                var body = p[(at + 1)..close].Split(',');
                var min = int.Parse(body[0]);
                var max = body.Length == 1 ? min : body[1].Length == 0 ? min + 3 : int.Parse(body[1]);
                at = close + 1;
                q = (min, max);
            }
            else return (1, 1);
            if (at < p.Length && p[at] == '?') at++; // lazy
            return q.Value;
        }
    }
}
