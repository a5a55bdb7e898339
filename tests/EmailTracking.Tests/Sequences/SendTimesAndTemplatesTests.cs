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
        Assert.Contains("'frist_name' is not a field this recipient has.", r.Errors);
        Assert.Contains("'size' is not a field this recipient has.", r.Errors);
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
        Assert.Single(MergeTemplates.Check("Hi", "{% for i in (1..1000) %}{% for j in (1..1000) %}x{% endfor %}{% endfor %}"));
        Assert.False(MergeTemplates.Render("Hi", "{% for i in (1..100000000) %}x{% endfor %}", new Dictionary<string, string>()).Ok);
        Assert.Equal(["first_name", "company"], MergeTemplates.FieldsUsed("Hi {{ first_name }}", "{{ company }} {{ first_name }}"));
    }

    [Theory]
    [InlineData("First Name", "first_name")]
    [InlineData("  Company-Size (FTE) ", "company_size_fte")]
    [InlineData("9lives", null)]
    [InlineData("!!!", null)]
    [InlineData("", null)]
    public void Column_names_become_field_names(string column, string? field) => Assert.Equal(field, MergeTemplates.FieldName(column));
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
