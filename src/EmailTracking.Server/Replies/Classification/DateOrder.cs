using System.Text.RegularExpressions;

namespace EmailTracking.Server.Replies.Classification;

/// <summary>
/// Whether the numeric dates of a notice ("back on 03/04/2027") are month first, from what the message tells: another
/// date in its text that can only be read one way, its Content-Language, the sender's country, a phone number's country
/// code, a US time zone, a second language of the notice, the Date header's offset; null (either) for English text
/// when nothing tells.
/// </summary>
/// <remarks>
/// Order: a date in the text that only one order makes a date ("25/12" day first, "12/25" month first) says how the
/// writer writes them, and wins; then Content-Language (or Accept-Language), as before: en-US month first, any other
/// language or English region day first. Then the weaker hints together: a day-first country's domain (.uk .ie .au .nz
/// .in .za, .de .fr .es … — never .com, .net, .io, .co and the like, which anyone registers), a phone number with
/// such a country's code (+44, +353, +61, +64, +91, +27, +46, +45, +47, +358, +48, +420, +90), the notice written in another language too, a
/// Date header east of Greenwich in Europe, Africa, India or Australasia (+01:00 to +05:30, +10:00 to +13:00) against a
/// US domain (.us .edu .gov .mil), +1 phone number or US time zone ("Eastern Time", "PST"). Hints that disagree tell
/// nothing. Without any, English text is either (null: the caller takes the earlier of the two dates) and other text day
/// first.
/// </remarks>
internal static partial class DateOrder
{
    /// <param name="text">The notice's own words (its subject and the text above any quoted original), where its dates and cues are.</param>
    public static bool? MonthFirst(MessageView v, string text)
    {
        // The notice's own words are at its start; its patterns read no further than the return date's (3,000 characters).
        if (text.Length > 3000)
            text = text[..3000];
        if (OrderOfOtherDates(text) is { } fromText)
            return fromText;
        var language = (v.Header("Content-Language") ?? v.Header("Accept-Language") ?? "").Trim().ToLowerInvariant();
        if (language.StartsWith("en-us", StringComparison.Ordinal))
            return true;
        if (language.Length >= 2 && !language.StartsWith("en", StringComparison.Ordinal))
            return false;
        if (language.StartsWith("en-", StringComparison.Ordinal))
            return false;
        var dayFirst = false;
        var monthFirst = false;
        switch (CountryOrder(v.FromAddress))
        {
            case true: monthFirst = true; break;
            case false: dayFirst = true; break;
        }
        var lower = TextTools.Squeeze(text, 3000, lower: true);
        if (lower.Contains('+'))
        {
            dayFirst |= DayFirstPhone().IsMatch(lower);
            monthFirst |= UsPhone().IsMatch(lower);
        }
        monthFirst |= UsTimeZone().IsMatch(text);
        dayFirst |= OtherLanguage().IsMatch(lower) || DayFirstOffset(v.Message.Date.Offset);
        if (dayFirst != monthFirst)
            return monthFirst;
        // Nothing tells, or the hints disagree: English text could be either (the caller takes the earlier reading), the
        // other languages write the day first.
        return EnglishText().IsMatch(v.Text.Length > 2000 ? v.Text[..2000] : v.Text) ? null : false;
    }

    /// <summary>
    /// True when the text has a numeric date that is one only month first (12/25), false when one only day first
    /// (25/12), null when it has neither or both. Slashes, and dashes with a year: "10-31" is more often a range's days.
    /// </summary>
    private static bool? OrderOfOtherDates(string text)
    {
        if (!text.Contains('/') && !text.Contains('-'))
            return null;
        bool? order = null;
        foreach (Match m in NumericDate().Matches(text))
        {
            var a = int.Parse(m.Groups["a"].ValueSpan, provider: null);
            var b = int.Parse(m.Groups["b"].ValueSpan, provider: null);
            bool? one = a is >= 13 and <= 31 && b is >= 1 and <= 12 ? false : b is >= 13 and <= 31 && a is >= 1 and <= 12 ? true : null;
            if (one is null)
                continue;
            if (order is not null && order != one)
                return null;
            order = one;
        }
        return order;
    }

    /// <summary>True for a US domain, false for a day-first country's, null for any other (.com tells nothing).</summary>
    private static bool? CountryOrder(string address)
    {
        var dot = address.LastIndexOf('.');
        if (dot < 0 || dot < address.IndexOf('@'))
            return null;
        var tld = address[(dot + 1)..];
        if (MonthFirstTlds.Contains(tld))
            return true;
        return DayFirstTlds.Contains(tld) ? false : null;
    }

    private static readonly HashSet<string> MonthFirstTlds = new(["us", "edu", "gov", "mil"], StringComparer.Ordinal);

    // Countries that write the day first, by their domain. Left out: .co, .io, .ai, .me, .tv, .fm, .ly and others used
    // by anyone as generic domains; Canada (both orders), China, Japan, Korea, Hungary, Lithuania (year first, month
    // before day), the Philippines (month first).
    private static readonly HashSet<string> DayFirstTlds = new(
        ["uk", "ie", "au", "nz", "in", "za", "de", "at", "ch", "li", "fr", "be", "nl", "lu", "es", "pt", "it", "br", "ar", "cl", "mx", "pe", "uy",
         "ve", "ec", "bo", "py", "dk", "no", "se", "fi", "is", "pl", "cz", "sk", "ru", "ua", "gr", "tr", "il", "ro", "bg", "hr", "si", "rs", "ee",
         "lv", "sg", "my", "pk", "bd", "lk", "ng", "gh", "eg", "ae", "sa", "hk", "id", "vn", "th", "mt", "cy"], StringComparer.Ordinal);

    /// <summary>Offsets of the Date header that are places writing the day first: Europe, Africa, the Gulf, India; Australia and New Zealand.</summary>
    private static bool DayFirstOffset(TimeSpan offset) =>
        (offset >= TimeSpan.FromHours(1) && offset <= TimeSpan.FromHours(5.5)) || (offset >= TimeSpan.FromHours(10) && offset <= TimeSpan.FromHours(13));

    // [0-9], not \d: \d also matches other scripts' digits (١٥/١٢), which int.Parse refuses.
    [GeneratedRegex(@"(?<![0-9/.-])(?<a>[0-9]{1,2})(?:/(?<b>[0-9]{1,2})(?:/(?:[0-9]{4}|[0-9]{2}))?(?![0-9/])|-(?<b>[0-9]{1,2})-(?:[0-9]{4}|[0-9]{2})(?![0-9-]))")]
    private static partial Regex NumericDate();

    // Britain, Ireland, Australia, New Zealand, India, South Africa; Sweden, Denmark, Norway, Finland, Poland, the Czech
    // Republic, Turkey (notices in English from there give their office's number).
    [GeneratedRegex(@"\+(?:44|353|61|64|91|27|46|45|47|358|48|420|90)[\s(]")]
    private static partial Regex DayFirstPhone();

    [GeneratedRegex(@"\+1[\s.-]*\(?\d{3}\)?[\s.-]*\d{3}[\s.-]\d{4}\b")]
    private static partial Regex UsPhone();

    // Case-sensitive abbreviations: "est" is French.
    [GeneratedRegex(@"\b(?:(?i:eastern|central|mountain|pacific) (?i:standard |daylight )?(?i:time)|EST|EDT|CST|CDT|MST|MDT|PST|PDT)\b")]
    private static partial Regex UsTimeZone();

    // A notice written in another of the languages too (bilingual notices are common in Europe): all of them write the day
    // first.
    [GeneratedRegex(@"\b(?:ich bin|vielen dank|nicht im b[üu]ro|je suis|je serai|merci pour|estoy|gracias por|estou|obrigad[oa]|sono (?:in|fuori)|grazie per|ik ben|bedankt voor|" +
        @"jag är|tack för|jeg er|tak for|takk for|olen|kiitos|jestem|dzi[ęe]kuj[ęe]|jsem|d[ěe]kuji|te[şs]ekk[üu]r)\b")]
    private static partial Regex OtherLanguage();

    [GeneratedRegex(@"\b(?:the|you|your|thank|please|will|office|have|this|with|regards)\b", RegexOptions.IgnoreCase)]
    private static partial Regex EnglishText();
}
