using System.Diagnostics.CodeAnalysis;
using System.Text.Encodings.Web;
using Fluid;
using Fluid.Values;

namespace EmailTracking.Server.Sequences;

/// <summary>A template rendered for one recipient, or why it cannot be: a field it uses has no value, or it fails.</summary>
public sealed record MergeResult(string Subject, string Html, IReadOnlyList<string> Errors)
{
    public bool Ok => Errors.Count == 0;
}

/// <summary>
/// Liquid templates with merge fields, parsed and rendered by Fluid. Fields are top-level names: the recipient's
/// <c>email</c>, <c>first_name</c>, <c>last_name</c>, <c>company</c>, any custom field an enrolment brings (a CSV
/// column), and the sender's <c>sender_name</c> and <c>sender_first_name</c>. A field the template reaches that
/// has no value for the recipient — unknown or empty — is an error, found before anything is sent; values are
/// HTML-encoded in the body. Unknown filters are errors too, and a runaway template is cut off.
/// </summary>
public static class MergeTemplates
{
    public static readonly string[] StandardFields = ["email", "first_name", "last_name", "company"];
    public static readonly string[] SenderFields = ["sender_name", "sender_first_name"];
    public const int MaxFieldName = 64;

    static readonly FluidParser Parser = new();
    /// <summary>Fluid makes a range's numbers before looping over them: (1..100000000) alone would take gigabytes.</summary>
    public const int MaxRange = 1000;

    /// <summary>
    /// Parses a template and refuses what would run away: nesting or chains deep enough to overflow the stack (looked
    /// for before Fluid reads the text, see <see cref="TemplateNesting"/>), and ranges that are not two literal numbers
    /// at most <see cref="MaxRange"/> apart; and includes (see <see cref="RangeGuard"/>). Every use of a template (saving,
    /// previews, enrolling, sending) parses it here.
    /// </summary>
    static bool TryParse(string source, [NotNullWhen(true)] out IFluidTemplate? template, out string error)
    {
        if (TemplateNesting.Problem(source) is { } deep)
        {
            template = null;
            error = deep;
            return false;
        }
        if (!Parser.TryParse(source, out template, out error)) return false;
        var guard = new RangeGuard();
        guard.VisitTemplate(template);
        if (guard.Problem is null) return true;
        error = guard.Problem;
        return false;
    }

    public const string NoInclude = "A template cannot include another: {% include %} and {% render %} are not supported.";

    /// <summary>
    /// Ranges that would run away, and includes: there are no template files to include, and Fluid's "file not found"
    /// escaped as a 500 when the template was saved.
    /// </summary>
    sealed class RangeGuard : Fluid.Ast.AstVisitor
    {
        public string? Problem { get; private set; }

        protected override Fluid.Ast.Statement VisitIncludeStatement(Fluid.Ast.IncludeStatement include)
        {
            Problem ??= NoInclude;
            return base.VisitIncludeStatement(include);
        }

        protected override Fluid.Ast.Statement VisitRenderStatement(Fluid.Ast.RenderStatement render)
        {
            Problem ??= NoInclude;
            return base.VisitRenderStatement(render);
        }

        protected override Fluid.Ast.Expression VisitRangeExpression(Fluid.Ast.RangeExpression range)
        {
            if (range.From is Fluid.Ast.LiteralExpression { Value: NumberValue from } && range.To is Fluid.Ast.LiteralExpression { Value: NumberValue to })
            {
                if (Math.Abs(to.ToNumberValue() - from.ToNumberValue()) > MaxRange) Problem ??= $"A range may span at most {MaxRange} numbers.";
            }
            else
            {
                Problem ??= "A range must be two numbers, such as (1..5).";
            }
            return base.VisitRangeExpression(range);
        }
    }

    /// <summary>
    /// At most this many characters written, and in any one assigned or captured value: steps alone do not bound a
    /// template's size (a value doubled 40 times is terabytes in 40 steps; a loop may write its text 100,000 times).
    /// </summary>
    public const int MaxOutput = 1_000_000;

    static readonly string TooLong = $"The template writes more than {MaxOutput:N0} characters.";

    /// <summary>A writer that refuses to hold more than <see cref="MaxOutput"/> characters.</summary>
    sealed class BoundedWriter : StringWriter
    {
        void Room(int more)
        {
            if (GetStringBuilder().Length + more > MaxOutput) throw new InvalidOperationException(TooLong);
        }

        public override void Write(char value) { Room(1); base.Write(value); }
        public override void Write(char[] buffer, int index, int count) { Room(count); base.Write(buffer, index, count); }
        public override void Write(ReadOnlySpan<char> buffer) { Room(buffer.Length); base.Write(buffer); }
        public override void Write(string? value) { Room(value?.Length ?? 0); base.Write(value); }
        public override void Write(System.Text.StringBuilder? value) { Room(value?.Length ?? 0); base.Write(value); }
    }

    static string RenderBounded(IFluidTemplate template, TemplateContext context, System.Text.Encodings.Web.TextEncoder encoder)
    {
        using var writer = new BoundedWriter();
        var rendering = template.RenderAsync(writer, encoder, context);
        if (!rendering.IsCompletedSuccessfully) rendering.AsTask().GetAwaiter().GetResult();
        return writer.ToString();
    }

    /// <summary>How many steps writing a template may take: each tag, and each turn of a loop, is one.</summary>
    public const int MaxSteps = 100_000;

    public static readonly string TooMuchWork =
        $"The template does too much work when it is written: more than {MaxSteps:N0} steps (each turn of a loop is one, and a loop inside a loop multiplies them). Make its loops shorter.";

    /// <summary>
    /// What an error says to the user. Fluid reports its step limit with its recursion error ("The maximum level of
    /// recursion has been reached. Your script must have a cyclic include statement."), which misled: there is no
    /// include. Its recursion limit is set above the nesting <see cref="TemplateNesting"/> lets through and templates
    /// cannot include others, so that error only ever means the steps.
    /// </summary>
    static string Describe(Exception ex) =>
        ex is InvalidOperationException && (ex.Message.StartsWith("The maximum level of recursion", StringComparison.Ordinal)
                                            || ex.Message.StartsWith("The maximum number of statements", StringComparison.Ordinal))
            ? TooMuchWork
            : OneLine(ex.Message);

    static TemplateOptions Options(List<string> undefined)
    {
        var o = new TemplateOptions { StrictFilters = true, MaxSteps = MaxSteps, MaxRecursion = TemplateNesting.MaxDepth + 1 };
        o.Assigned = (_, value, _) => value is StringValue && value.ToStringValue().Length > MaxOutput
            ? throw new InvalidOperationException(TooLong) : ValueTask.FromResult(value);
        o.Captured = o.Assigned.Invoke;
        o.Undefined = name =>
        {
            if (!undefined.Contains(name)) undefined.Add(name);
            return ValueTask.FromResult<FluidValue>(NilValue.Instance);
        };
        return o;
    }

    /// <summary>A CSV header or API key as a field name: lower case, words joined by "_"; null when nothing usable is left.</summary>
    public static string? FieldName(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var sb = new System.Text.StringBuilder();
        foreach (var ch in text.Trim().ToLowerInvariant())
        {
            if (char.IsAsciiLetterOrDigit(ch)) sb.Append(ch);
            else if (sb.Length > 0 && sb[^1] != '_') sb.Append('_');
        }
        var name = sb.ToString().Trim('_');
        return name.Length is 0 or > MaxFieldName || !char.IsAsciiLetter(name[0]) ? null : name;
    }

    /// <summary>
    /// Syntax errors, unknown filters and names no recipient can have (see <see cref="NeverAField"/>) of a subject and
    /// body, by part; empty when both are usable.
    /// </summary>
    public static List<string> Check(string subject, string html)
    {
        var errors = new List<string>();
        foreach (var (part, source) in new[] { ("Subject", subject), ("Body", html) })
        {
            if (!TryParse(source, out var template, out var error))
            {
                errors.Add($"{part}: {OneLine(error)}");
                continue;
            }
            var reached = new List<string>();
            try
            {
                RenderBounded(template, new TemplateContext(Options(reached)), NullEncoder.Default);
            }
            catch (Exception ex) when (ex is FluidException or InvalidOperationException or ArgumentException or FormatException)
            {
                errors.Add($"{part}: {Describe(ex)}");
                continue;
            }
            var own = new OwnNames();
            own.VisitTemplate(template);
            foreach (var name in reached)
                if (!own.Names.Contains(name) && NeverAField(name) is { } why) errors.Add($"{part}: {why}");
        }
        return errors;
    }

    /// <summary>The names a template gives values to itself (assign, capture, loops, counters).</summary>
    sealed class OwnNames : Fluid.Ast.AstVisitor
    {
        public HashSet<string> Names { get; } = new(StringComparer.Ordinal);

        protected override Fluid.Ast.Statement VisitAssignStatement(Fluid.Ast.AssignStatement s) { Names.Add(s.Identifier); return base.VisitAssignStatement(s); }
        protected override Fluid.Ast.Statement VisitCaptureStatement(Fluid.Ast.CaptureStatement s) { Names.Add(s.Identifier); return base.VisitCaptureStatement(s); }
        protected override Fluid.Ast.Statement VisitForStatement(Fluid.Ast.ForStatement s) { Names.Add(s.Identifier); return base.VisitForStatement(s); }
        protected override Fluid.Ast.Statement VisitTableRowStatement(Fluid.Ast.TableRowStatement s) { Names.Add(s.Identifier); return base.VisitTableRowStatement(s); }
        protected override Fluid.Ast.Statement VisitIncrementStatement(Fluid.Ast.IncrementStatement s) { Names.Add(s.Identifier); return base.VisitIncrementStatement(s); }
        protected override Fluid.Ast.Statement VisitDecrementStatement(Fluid.Ast.DecrementStatement s) { Names.Add(s.Identifier); return base.VisitDecrementStatement(s); }
    }

    /// <summary>
    /// Why a name the template reaches is a mistake for a field, or null when it may be a field. Field names are made by
    /// <see cref="FieldName"/> (lower case, words joined by "_") from CSV columns and API keys, and Fluid ignores case:
    /// <c>{{ first-name }}</c> can never have a value, and <c>{{ firstName }}</c> or <c>{{ firstname }}</c> is not
    /// first_name (a CSV column "First name" or "firstname" fills first_name). Either would fail for every recipient,
    /// and only when enrolling: it is refused when the template is saved instead. Any other name may be a custom field
    /// the people enrolled bring, so it is checked for each of them (<see cref="Render"/>), not here.
    /// </summary>
    public static string? NeverAField(string name)
    {
        const string Form = "field names are lower case, with words joined by '_'";
        if (name.Length > MaxFieldName) return $"'{name[..MaxFieldName]}…' is not a field name: field names are at most {MaxFieldName} characters.";
        var lower = name.ToLowerInvariant();
        var ours = StandardFields.Concat(SenderFields).FirstOrDefault(f => Squashed(f) == Squashed(name));
        if (ours is not null && ours != lower) return $"'{name}' is not a field name; did you mean '{ours}'? ({Form}.)";
        if (FieldName(name) == lower) return null;
        return FieldName(Words(name)) is { } meant ? $"'{name}' is not a field name; did you mean '{meant}'? ({Form}.)" : $"'{name}' is not a field name: {Form}.";
    }

    /// <summary>"firstName" and "FirstName" as "first_Name": a camel-case name's words apart.</summary>
    static string Words(string name)
    {
        var sb = new System.Text.StringBuilder();
        for (var i = 0; i < name.Length; i++)
        {
            if (i > 0 && char.IsUpper(name[i]) && char.IsLetterOrDigit(name[i - 1]) && !char.IsUpper(name[i - 1])) sb.Append('_');
            sb.Append(name[i]);
        }
        return sb.ToString();
    }

    /// <summary>Letters and digits only, lower case: "firstName", "first_name" and "First-Name" are one.</summary>
    static string Squashed(string name) => new([.. name.Where(char.IsLetterOrDigit).Select(char.ToLowerInvariant)]);

    /// <summary>The one of <paramref name="fields"/> a name was most likely meant to be — written another way, or mistyped by a letter or two — or null.</summary>
    static string? Likely(string name, IEnumerable<string> fields)
    {
        var wanted = Squashed(name);
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var field in fields.Order(StringComparer.Ordinal))
        {
            var distance = Distance(wanted, Squashed(field));
            if (distance < bestDistance) (best, bestDistance) = (field, distance);
        }
        // Two edits in a name of four letters would make anything likely.
        return bestDistance == 0 || (bestDistance <= 2 && wanted.Length >= 5) ? best : null;
    }

    /// <summary>Edits (a letter added, removed, changed, or two swapped) between two short names.</summary>
    static int Distance(string a, string b)
    {
        if (Math.Abs(a.Length - b.Length) > 2 || a.Length > MaxFieldName || b.Length > MaxFieldName) return int.MaxValue;
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        }
        return d[a.Length, b.Length];
    }

    /// <summary>Why a name the template reaches is no field of this recipient's: the one it was likely meant to be, else the fields they have.</summary>
    static string NotAField(string name, IReadOnlyDictionary<string, string> fields)
    {
        if (Likely(name, fields.Keys) is { } meant) return $"'{name}' is not a field this recipient has: did you mean '{meant}'?";
        var names = fields.Keys.Order(StringComparer.Ordinal).ToList();
        const int Shown = 20;
        var list = string.Join(", ", names.Take(Shown)) + (names.Count > Shown ? $" and {names.Count - Shown} more" : "");
        return names.Count == 0 ? $"'{name}' is not a field this recipient has (they have none)." : $"'{name}' is not a field this recipient has; theirs are {list}.";
    }

    /// <summary>The fields a template reaches when every field is empty (branches on fields may reach more).</summary>
    public static List<string> FieldsUsed(string subject, string html)
    {
        var used = new List<string>();
        foreach (var source in new[] { subject, html })
        {
            if (!TryParse(source, out var template, out _)) continue;
            try
            {
                RenderBounded(template, new TemplateContext(Options(used)), NullEncoder.Default);
            }
            catch (Exception ex) when (ex is FluidException or InvalidOperationException or ArgumentException or FormatException)
            {
                // Check reports it.
            }
        }
        return used;
    }

    /// <summary>The subject and body for one recipient; every field reached must have a value.</summary>
    public static MergeResult Render(string subject, string html, IReadOnlyDictionary<string, string> fields)
    {
        var errors = new List<string>();
        var undefined = new List<string>();
        string RenderPart(string part, string source, TextEncoder encoder)
        {
            if (!TryParse(source, out var template, out var error))
            {
                errors.Add($"{part}: {OneLine(error)}");
                return "";
            }
            var context = new TemplateContext(Options(undefined));
            foreach (var (k, v) in fields)
                if (!string.IsNullOrWhiteSpace(v)) context.SetValue(k, v);
            try
            {
                return RenderBounded(template, context, encoder);
            }
            catch (Exception ex) when (ex is FluidException or InvalidOperationException or ArgumentException or FormatException)
            {
                errors.Add($"{part}: {Describe(ex)}");
                return "";
            }
        }
        var s = RenderPart("Subject", subject, NullEncoder.Default).Trim();
        var h = RenderPart("Body", html, HtmlEncoder.Default);
        foreach (var name in undefined)
        {
            // A standard field the recipient was given no value for is theirs all the same, empty.
            errors.Add(fields.ContainsKey(name) || StandardFields.Contains(name) ? $"'{name}' is empty for this recipient." : NotAField(name, fields));
        }
        return new MergeResult(s, h, errors);
    }

    static string OneLine(string text) => string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
