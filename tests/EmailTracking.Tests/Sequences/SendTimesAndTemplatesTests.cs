using System.Text;
using EmailTracking.Server.Sequences;

namespace EmailTracking.Tests.Sequences;

/// <summary>When a step is due (time zones, business days, send windows, daylight saving) and how a template is written for one person.</summary>
public sealed class SendTimesTests
{
    static readonly TimeZoneInfo Vienna = SendTimes.Zone("Europe/Vienna")!;
    static readonly TimeZoneInfo NewYork = SendTimes.Zone("America/New_York")!;
    static readonly TimeOnly Nine = new(9, 0), Five = new(17, 0);

    static DateTimeOffset Utc(int y, int m, int d, int h, int min = 0) => new(y, m, d, h, min, 0, TimeSpan.Zero);

    [Fact]
    public void A_first_step_goes_at_once_inside_the_window_and_at_its_opening_outside()
    {
        // Monday 2026-12-07, Vienna is UTC+1.
        Assert.Equal(Utc(2026, 12, 7, 10), SendTimes.Due(Utc(2026, 12, 7, 10), 0, true, Nine, Five, Vienna));
        Assert.Equal(Utc(2026, 12, 7, 8), SendTimes.Due(Utc(2026, 12, 7, 6), 0, true, Nine, Five, Vienna));
        // 17:30 local: the next morning.
        Assert.Equal(Utc(2026, 12, 8, 8), SendTimes.Due(Utc(2026, 12, 7, 16, 30), 0, true, Nine, Five, Vienna));
        // Friday evening: Monday morning with business days; Saturday morning without.
        Assert.Equal(Utc(2026, 12, 14, 8), SendTimes.Due(Utc(2026, 12, 11, 17), 0, true, Nine, Five, Vienna));
        Assert.Equal(Utc(2026, 12, 12, 8), SendTimes.Due(Utc(2026, 12, 11, 17), 0, false, Nine, Five, Vienna));
    }

    [Fact]
    public void Delays_count_business_days_in_the_recipients_time_zone()
    {
        // Sent Thursday 10:00 Vienna; 2 business days: Monday 10:00 (Saturday and Sunday do not count).
        Assert.Equal(Utc(2026, 12, 14, 9), SendTimes.Due(Utc(2026, 12, 10, 9), 2, true, Nine, Five, Vienna));
        // Calendar days: Saturday.
        Assert.Equal(Utc(2026, 12, 12, 9), SendTimes.Due(Utc(2026, 12, 10, 9), 2, false, Nine, Five, Vienna));
        // The same instant is Wednesday 04:00 in New York: two business days later is Friday, at the window's opening.
        Assert.Equal(Utc(2026, 12, 11, 14), SendTimes.Due(Utc(2026, 12, 9, 9), 2, true, Nine, Five, NewYork));
    }

    [Fact]
    public void Daylight_saving_changes_give_a_real_instant()
    {
        // Vienna springs forward on 2027-03-28 at 02:00 (to 03:00): a 02:30 window opening is 03:30 CEST = 01:30 UTC.
        var gap = SendTimes.Due(Utc(2027, 3, 27, 12), 0, false, new TimeOnly(2, 30), new TimeOnly(4, 0), Vienna);
        Assert.Equal(Utc(2027, 3, 28, 1), gap);
        // Falls back on 2027-10-31 at 03:00 (to 02:00): 02:30 happens twice; the first (CEST, UTC+2) is taken.
        var twice = SendTimes.Due(Utc(2027, 10, 30, 12), 0, false, new TimeOnly(2, 30), new TimeOnly(4, 0), Vienna);
        Assert.Equal(Utc(2027, 10, 31, 0, 30), twice);
        Assert.Throws<ArgumentException>(() => SendTimes.Due(Utc(2027, 1, 1, 0), 0, false, Five, Nine, Vienna));
        Assert.Null(SendTimes.Zone("Mars/Olympus"));
        Assert.Null(SendTimes.Zone(new string('x', 200)));
    }
}

public sealed class MergeTemplatesTests
{
    static Dictionary<string, string> Sam => new() { ["email"] = "sam@encom.test", ["first_name"] = "Sam", ["company"] = "Encom <Ltd> & Co", ["industry"] = "games" };

    [Fact]
    public void Fields_are_merged_and_HTML_encoded_in_the_body_only()
    {
        var r = MergeTemplates.Render("Hi {{ first_name }} at {{ company }}", "<p>Dear {{ first_name | upcase }}, {{ company }} in {{ industry }}</p>", Sam);
        Assert.True(r.Ok, string.Join(" ", r.Errors));
        Assert.Equal("Hi Sam at Encom <Ltd> & Co", r.Subject);
        Assert.Equal("<p>Dear SAM, Encom &lt;Ltd&gt; &amp; Co in games</p>", r.Html);
    }

    [Fact]
    public void A_field_the_recipient_lacks_or_has_empty_is_an_error_naming_it()
    {
        var fields = Sam;
        fields["last_name"] = " ";
        var r = MergeTemplates.Render("Hi {{ first_name }}", "<p>{{ last_name }} / {{ frist_name }} / {% if size %}{{ size }}{% endif %}</p>", fields);
        Assert.False(r.Ok);
        Assert.Contains("'last_name' is empty for this recipient.", r.Errors);
        Assert.Contains("'frist_name' is not a field this recipient has: did you mean 'first_name'?", r.Errors);
        Assert.Contains("'size' is not a field this recipient has; theirs are company, email, first_name, industry, last_name.", r.Errors);
    }

    [Fact]
    public void A_name_no_recipient_can_have_is_refused_when_saved_and_a_missing_field_is_named_with_the_one_meant()
    {
        // {{ firstName }} was saved, then every preview and enrolment said "'firstName' is not a field this recipient
        // has." Field names are lower case with words joined by "_" (FieldName makes them so, and a CSV column
        // "firstname" fills first_name): refused when saved, with the name meant.
        Assert.Equal("Subject: 'firstName' is not a field name; did you mean 'first_name'? (field names are lower case, with words joined by '_'.)",
            Assert.Single(MergeTemplates.Check("Hi {{ firstName }}", "<p>x</p>")));
        foreach (var (written, meant) in new[] { ("firstname", "first_name"), ("first-name | default: 'there'", "first_name"), ("SenderName", "sender_name"), ("Last-Name", "last_name"), ("industry-sector", "industry_sector") })
        {
            Assert.Contains($"did you mean '{meant}'?", Assert.Single(MergeTemplates.Check("Hi", $"{{{{ {written} }}}}")));
        }
        // Names the template gives values to itself, and names that may be custom fields, are not refused.
        // Fluid finds a field whatever the case: {{ Industry }} is industry.
        Assert.Empty(MergeTemplates.Check("Hi", "{% if a %}{% assign Greeting = 'Hey' %}{% endif %}{{ Greeting }} {{ industry }} {{ Company_Size }} {{ FIRST_NAME }} {{ companySize }} {% for Item in list %}{{ Item }}{% endfor %}"));
        Assert.Equal("Hi games", MergeTemplates.Render("Hi {{ Industry }}", "x", new Dictionary<string, string> { ["industry"] = "games" }).Subject);

        // Previewed or enrolled: the field meant (written another way or mistyped), else the fields the recipient has;
        // a standard field they were given no value for is empty.
        var fields = new Dictionary<string, string> { ["email"] = "sam@encom.test", ["first_name"] = "Sam", ["industry"] = "games" };
        var r = MergeTemplates.Render("Hi {{ firstName }}", "<p>{{ industyr }} {{ size }} {{ company }}</p>", fields);
        Assert.Equal([
            "'firstName' is not a field this recipient has: did you mean 'first_name'?",
            "'industyr' is not a field this recipient has: did you mean 'industry'?",
            "'size' is not a field this recipient has; theirs are email, first_name, industry.",
            "'company' is empty for this recipient.",
        ], r.Errors);
    }

    [Fact]
    public void Syntax_errors_and_unknown_filters_are_found_before_anything_is_sent()
    {
        Assert.Empty(MergeTemplates.Check("Hi {{ first_name }}", "<p>{{ company | downcase }}</p>"));
        var syntax = MergeTemplates.Check("Hi {{ first_name", "<p>ok</p>");
        Assert.StartsWith("Subject:", Assert.Single(syntax));
        var filter = MergeTemplates.Check("Hi", "<p>{{ first_name | shout }}</p>");
        Assert.Contains("shout", Assert.Single(filter));
        // What would run away is refused: a huge range (Fluid makes its numbers first), a range over a field, and a
        // loop that runs too long is cut off.
        Assert.Contains("at most 1000", Assert.Single(MergeTemplates.Check("Hi", "{% for i in (1..100000000) %}x{% endfor %}")));
        Assert.Contains("two numbers", Assert.Single(MergeTemplates.Check("Hi", "{% for i in (1..size) %}x{% endfor %}")));
        Assert.Equal("Body: " + MergeTemplates.TooMuchWork, Assert.Single(MergeTemplates.Check("Hi", "{% for i in (1..1000) %}{% for j in (1..1000) %}x{% endfor %}{% endfor %}")));
        Assert.False(MergeTemplates.Render("Hi", "{% for i in (1..100000000) %}x{% endfor %}", new Dictionary<string, string>()).Ok);
        Assert.Equal(["first_name", "company"], MergeTemplates.FieldsUsed("Hi {{ first_name }}", "{{ company }} {{ first_name }}"));
    }

    [Fact]
    public void A_template_over_the_step_limit_says_it_does_too_much_work_not_that_it_includes_itself()
    {
        // Fluid reports its step limit as "The maximum level of recursion has been reached. Your script must have a
        // cyclic include statement."; there is no include.
        const string loops = "{% for i in (1..300) %}{% for j in (1..300) %}x{% endfor %}{% endfor %}";
        var problem = Assert.Single(MergeTemplates.Check("Hi", loops));
        Assert.Equal("Body: " + MergeTemplates.TooMuchWork, problem);
        Assert.Contains("too much work", problem);
        Assert.Contains("100,000 steps", problem);
        Assert.DoesNotContain("include", problem);
        Assert.DoesNotContain("recursion", problem);
        Assert.Equal(["Subject: " + MergeTemplates.TooMuchWork], MergeTemplates.Render(loops, "<p>Hi</p>", new Dictionary<string, string>()).Errors);
        // Loops nested as deep as blocks may nest are written (Fluid's recursion limit stopped them at 20, with the
        // same message).
        var nested = string.Concat(Enumerable.Repeat("{% for i in (1..1) %}", 40)) + "y" + string.Concat(Enumerable.Repeat("{% endfor %}", 40));
        var merged = MergeTemplates.Render("Hi", nested, new Dictionary<string, string>());
        Assert.True(merged.Ok, string.Join(" ", merged.Errors));
        Assert.Equal("y", merged.Html);
    }

    [Fact]
    public void An_include_or_render_is_refused_when_saved_not_a_file_not_found_error()
    {
        // There are no template files: Fluid threw FileNotFoundException, which nothing caught (a 500 when saving).
        foreach (var tag in new[] { "{% include 'footer' %}", "{% render \"footer\" %}", "{% if x %}{% include 'x' %}{% endif %}" })
        {
            Assert.Equal("Body: " + MergeTemplates.NoInclude, Assert.Single(MergeTemplates.Check("Hi", tag)));
            Assert.Equal(["Body: " + MergeTemplates.NoInclude], MergeTemplates.Render("Hi", tag, new Dictionary<string, string> { ["x"] = "1" }).Errors);
        }
    }

    [Theory]
    [InlineData("First Name", "first_name")]
    [InlineData("  Company-Size (FTE) ", "company_size_fte")]
    [InlineData("9lives", null)]
    [InlineData("!!!", null)]
    [InlineData("", null)]
    public void Column_names_become_field_names(string column, string? field) => Assert.Equal(field, MergeTemplates.FieldName(column));
}

/// <summary>
/// Templates that would make Fluid recurse until the stack runs out — which ends the process, as a stack overflow
/// cannot be caught — are refused before Fluid reads them, by every use of a template (saving, preview, sending), and
/// whatever is within the limits is read and written on a smaller stack than the server's threads have.
/// </summary>
public sealed class TemplateNestingTests
{
    static string Repeat(string s, int n) => string.Concat(Enumerable.Repeat(s, n));

    static readonly Dictionary<string, string> X = new() { ["x"] = "1" };

    /// <summary>On a thread with a 512 KB stack (a thread pool thread has 1.5 MB on Linux), so that the limits are shown to leave room.</summary>
    static T OnSmallStack<T>(Func<T> f)
    {
        T result = default!;
        var thread = new Thread(() => result = f(), 512 * 1024);
        thread.Start();
        thread.Join();
        return result;
    }

    static string Nested(string what, int n) => what switch
    {
        "parentheses" => "{{ " + new string('(', n) + "1" + new string(')', n) + " }}",
        "brackets" => "{{ " + Repeat("x[", n) + "1" + new string(']', n) + " }}",
        "case" => Repeat("{% case x %}{% when 1 %}", n) + "y" + Repeat("{% endcase %}", n),
        "for" or "tablerow" => Repeat($"{{% {what} i in x %}}", n) + "y" + Repeat($"{{% end{what} %}}", n),
        "capture" => Repeat("{% capture c %}", n) + "y" + Repeat("{% endcapture %}", n),
        "if without endif" => Repeat("{% if x %}", n),
        "blocks and brackets" => Repeat("{% if x %}", n / 2) + "{{ " + Repeat("x[", n - n / 2) + "1" + new string(']', n - n / 2) + " }}" + Repeat("{% endif %}", n / 2),
        "ifchanged" => Repeat("{% ifchanged %}", n) + "y" + Repeat("{% endifchanged %}", n),
        _ => Repeat($"{{% {what} x %}}", n) + "y" + Repeat($"{{% end{what} %}}", n),
    };

    public static TheoryData<string> Kinds => ["parentheses", "brackets", "if", "unless", "case", "for", "capture", "tablerow", "ifchanged", "if without endif", "blocks and brackets"];

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Nesting_beyond_the_limit_is_refused_by_saving_preview_and_sending_naming_the_limit(string what)
    {
        foreach (var n in new[] { 3000, TemplateNesting.MaxDepth + 1 })
        {
            var html = Nested(what, n);
            var problem = Assert.Single(OnSmallStack(() => MergeTemplates.Check("Hi", html)));
            Assert.Equal("Body: " + TemplateNesting.TooDeep, problem);
            Assert.Contains($"nested more than {TemplateNesting.MaxDepth} deep", problem);
            Assert.Contains("Body: " + TemplateNesting.TooDeep, OnSmallStack(() => MergeTemplates.Render("Hi", html, X)).Errors);
            Assert.Empty(OnSmallStack(() => MergeTemplates.FieldsUsed("Hi", html)));
            Assert.Equal("Subject: " + TemplateNesting.TooDeep, Assert.Single(OnSmallStack(() => MergeTemplates.Check(html, "<p>Hi</p>"))));
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Nesting_up_to_the_limit_is_read_and_written_on_a_small_stack(string what)
    {
        var html = Nested(what, TemplateNesting.MaxDepth);
        Assert.DoesNotContain(OnSmallStack(() => MergeTemplates.Check("Hi", html)), e => e.Contains("nested"));
        var merged = OnSmallStack(() => MergeTemplates.Render("Hi", html, X));
        Assert.DoesNotContain(merged.Errors, e => e.Contains("nested"));
        if (what is not ("parentheses" or "if without endif" or "ifchanged")) Assert.True(merged.Ok, $"{what}: {string.Join(" ", merged.Errors)}");
    }

    [Theory]
    [InlineData(" | upcase", 2000)]
    [InlineData(" and x", 20000)]
    [InlineData(" or x", 20000)]
    [InlineData(" | default: x", 65)]
    public void A_chain_of_filters_or_and_or_beyond_the_limit_is_refused(string link, int n)
    {
        foreach (var html in new[] { "{{ x" + Repeat(link, n) + " }}", "{% if x" + Repeat(link, n) + " %}y{% endif %}", "{% assign z = x" + Repeat(link, n) + " %}" })
        {
            Assert.Equal("Body: " + TemplateNesting.TooLong, Assert.Single(OnSmallStack(() => MergeTemplates.Check("Hi", html))));
        }
        var longest = "{{ x" + Repeat(link, TemplateNesting.MaxChain) + " }}";
        Assert.True(OnSmallStack(() => MergeTemplates.Render("Hi", longest, X)).Ok);
    }

    [Fact]
    public void Strings_raw_and_comments_neither_count_nor_hide_what_Fluid_reads()
    {
        var deep = "{{ " + Repeat("a[", 100) + "1" + new string(']', 100) + " }}";
        // Not read as code by Fluid: not counted.
        Assert.Empty(MergeTemplates.Check("Hi", "{{ \"" + new string('(', 100) + "}}\" | append: '" + new string('[', 100) + "' }}"));
        Assert.Empty(MergeTemplates.Check("Hi", "{% raw %}" + Repeat("{% if x %}", 100) + "{% endraw %}"));
        Assert.Empty(MergeTemplates.Check("Hi", "{%- comment -%}" + deep + "{%endcomment%}"));
        Assert.Empty(MergeTemplates.Check("Hi", "{% # " + new string('(', 100) + " %}"));
        Assert.Empty(MergeTemplates.Check("Hi", "<p>" + new string('(', 100) + "</p>"));
        // Read as code by Fluid: counted, whatever comes before it (quotes in text or in an inline comment, an escaped
        // quote, a string holding "}}", a raw block's text).
        foreach (var before in new[] { "don't ", "{% # don't %}", "{{ \"a\\\"\" }}", "{{ x | default: \"}}\" }}", "{% raw %}{% if x %}'{% endraw %}", "{% comment %}\"{% endcomment %}" })
        {
            Assert.Equal("Body: " + TemplateNesting.TooDeep, Assert.Single(OnSmallStack(() => MergeTemplates.Check("Hi", before + deep + " '\""))));
        }
        Assert.Equal("Body: " + TemplateNesting.NoLiquidTag, Assert.Single(MergeTemplates.Check("Hi", "{% liquid\necho x\n%}")));
    }
}

public sealed class CsvImportTests
{
    [Fact]
    public void Known_columns_are_recognised_custom_ones_kept_and_broken_rows_reported_by_number()
    {
        var csv = "Email,First Name,Company,Time zone,Industry\n" +
                  "sam@encom.test,Sam,Encom,Europe/Vienna,games\n" +
                  "\n" +
                  "lora@encom.test,\"Lora \"\"L\"\" B\",Encom,,research\n" +
                  "alan@encom.test,Alan,Encom,UTC,security,extra\n" +
                  "\"broken@encom.test,Bro\"ken,Encom,UTC,x\n" +
                  "kevin@encom.test,Kevin,Flynn's,UTC,arcades\n";
        var (rows, broken, error) = SequenceEnroller.ReadCsv(new StringReader(csv));
        Assert.Null(error);
        Assert.Equal(["sam@encom.test", "lora@encom.test", "kevin@encom.test"], rows.Select(r => r.Input.Email));
        Assert.Equal([2, 4, 7], rows.Select(r => r.Row));
        Assert.Equal("Lora \"L\" B", rows[1].Input.FirstName);
        Assert.Equal("games", rows[0].Input.Fields!["industry"]);
        Assert.Equal("Europe/Vienna", rows[0].Input.TimeZone);
        Assert.Equal([5, 6], broken.Select(b => b.Row).Order());
        Assert.Contains("6 values", broken.Single(b => b.Row == 5).Errors[0]);
    }

    [Fact]
    public void A_file_is_read_as_UTF_8_as_its_byte_order_mark_says_or_else_as_Windows_1252_when_it_is_not_UTF_8()
    {
        const string text = "email,first name,company\nj@x.test,Jérôme,Müller & Søn – “Café” €\n";
        // Excel's "CSV" in western Europe: Windows-1252 (é = E9, ô = F4, – = 96, “ ” = 93 94, € = 80).
        byte[] ansi = [.. "email,first name,company\nj@x.test,J"u8, 0xE9, (byte)'r', 0xF4, .. "me,M"u8, 0xFC, .. "ller & S"u8, 0xF8, (byte)'n', (byte)' ', 0x96,
            (byte)' ', 0x93, .. "Caf"u8, 0xE9, 0x94, (byte)' ', 0x80, (byte)'\n'];
        Assert.Equal((text, null), CsvText.Decode(ansi));
        Assert.Equal((text, null), CsvText.Decode(Encoding.UTF8.GetBytes(text)));
        foreach (var encoding in new Encoding[] { new UTF8Encoding(true), Encoding.Unicode, Encoding.BigEndianUnicode, new UTF32Encoding(false, true), new UTF32Encoding(true, true) })
        {
            Assert.Equal((text, null), CsvText.Decode([.. encoding.GetPreamble(), .. encoding.GetBytes(text)]));
        }
        // Marked as UTF-8 and not: said, not guessed.
        var (broken, error) = CsvText.Decode([0xEF, 0xBB, 0xBF, .. "email\nj"u8, 0xE9, (byte)'\n']);
        Assert.Null(broken);
        Assert.Contains("byte 11 is not UTF-8", error);
        var (rows, _, fileError) = SequenceEnroller.ReadCsv(new StringReader(CsvText.Decode(ansi).Text!));
        Assert.Null(fileError);
        Assert.Equal("Jérôme", Assert.Single(rows).Input.FirstName);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("name,company\nSam,Encom\n", "No column is named email")]
    [InlineData("email,e-mail\na@b.test,c@d.test\n", "same field")]
    [InlineData("email,!!!\na@b.test,x\n", "cannot be field names")]
    public void A_file_that_cannot_be_used_says_why(string csv, string why)
    {
        var (_, _, error) = SequenceEnroller.ReadCsv(new StringReader(csv));
        Assert.Contains(why, error);
    }
}
