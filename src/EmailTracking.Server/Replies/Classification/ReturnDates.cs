using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace EmailTracking.Server.Replies.Classification;

/// <summary>
/// Finds the day an out-of-office notice says its author is back ("back on 12 March", "zurück am 3.4.2026",
/// "de retour le 5 janvier", "regreso el 10 de febrero", "volto dia 2 de maio", "rientro il 7 aprile", "terug op
/// 14 juni", ISO dates, numeric dates), resolved against the message's date.
/// </summary>
/// <remarks>
/// Rules: a date right after a return phrase ("back on", "zurück am", "de retour le", …) wins over one after an
/// "until" phrase ("until", "bis", "jusqu'au", "hasta", "até", "fino al", "tot"), which wins over the last day of a
/// range written with a dash ("July 10-31", "12/20-1/3"); an "until" date or a range's end is taken as the return day
/// (the pause ends that day; the sequence runner resumes the day after). A date without a year is the next such date
/// on or after the message date, unless it passed within the last two months (a notice left on: no date). A day
/// already past is skipped for the next date in the text. Numeric dates are day-first in German, French, Spanish,
/// Portuguese, Italian, Dutch and British English, month-first in other English unless the first number cannot be a
/// month; dotted dates (3.4.) are always day-first, dashed ones (3-1) never turned round. A weekday after a return
/// phrase ("back on Monday") or an until word of its own ("until Friday", not "Monday to Friday") is the next such
/// weekday after the message date (that day itself when the Date is in UTC before 10:00, and its writer in the Americas
/// may still be on the day before); "tomorrow" is the day after it. A day without a month ("back on the 7th", "ab dem 7.",
/// "de retour le 7", "el día 7", "terug op de 7e", "il 7", "no dia 7") is the next such day from the message date (next
/// month's once it has passed, with the day's slack for time zones that dates with a month have); "next week" ("back next week", "nächste Woche wieder da", "jusqu'à la
/// semaine prochaine") is the Monday of the week after the message's. Words that do not say when ("back soon") give none.
/// </remarks>
internal static partial class ReturnDates
{
    /// <summary>The first year no one is back in: a stated return in it or later (9999-12-31, "until I turn it off") is no date.</summary>
    public const int NoReturnFromYear = 2200;

    private static readonly Dictionary<string, int> Months = BuildMonths();
    private static readonly Dictionary<string, DayOfWeek> Weekdays = BuildWeekdays();

    /// <param name="sent">The message's day, by the clock of its Date header.</param>
    /// <param name="writerMayBeADayBehind">Whether the writer's own day may still be the one before <paramref name="sent"/>:
    /// a Date written in UTC before 10:00 (see <see cref="WriterMayBeADayBehind"/>).</param>
    public static DateOnly? Find(string text, DateOnly sent, bool monthFirstDefault, bool writerMayBeADayBehind = false)
    {
        if (string.IsNullOrWhiteSpace(text))
            return null;
        var lower = TextTools.Squeeze(text, 3000, lower: true).Replace('\u2019', '\'');
        return FirstAfter(ReturnAnchor(), lower, sent, monthFirstDefault, allowLoose: true, writerMayBeADayBehind)
               ?? NextWeekBeforeReturn(lower, sent)
               ?? TomorrowBeforeReturn(lower, sent)
               ?? FirstAfter(UntilAnchor(), lower, sent, monthFirstDefault, allowLoose: false, writerMayBeADayBehind)
               ?? DateBeforeItsWord(lower, sent, monthFirstDefault, writerMayBeADayBehind)
               ?? RangeEnd(lower, sent, monthFirstDefault)
               ?? EndOfMonth(lower, sent);
    }

    /// <summary>
    /// "nächste Woche wieder da", "volgende week terug", "la semana que viene estoy de vuelta": next week told before the
    /// return word, where no return phrase comes first. Only texts that name a week are searched.
    /// </summary>
    private static DateOnly? NextWeekBeforeReturn(string text, DateOnly sent) =>
        text.AsSpan().ContainsAny(WeekWords) && NextWeekThenReturn().IsMatch(text) ? MondayAfter(sent) : null;

    /// <summary>
    /// "until the end of June", "bis Ende März", "jusqu'à fin avril", "hasta finales de abril", "até o final de abril", "fino
    /// alla fine di aprile", "tot eind april": the month's last day, the last day away (long leaves are written so).
    /// </summary>
    private static DateOnly? EndOfMonth(string text, DateOnly sent)
    {
        if (!text.AsSpan().ContainsAny(EndWords) || EndOfMonthPhrase().Match(text) is not { Success: true } m)
            return null;
        var month = Months[Fold(m.Groups["m"].Value)];
        int? year = m.Groups["y"].Success ? int.Parse(m.Groups["y"].Value, CultureInfo.InvariantCulture) : null;
        // The 28th is in every month: the month as a date without a day would be read, then its last day.
        return FromParts(28, month, year, sent) is { } inMonth ? new DateOnly(inMonth.Year, inMonth.Month, DateTime.DaysInMonth(inMonth.Year, inMonth.Month)) : null;
    }

    private static readonly SearchValues<string> EndWords = SearchValues.Create(["end of", "ende ", "fin ", "final", "fine di", "eind "], StringComparison.Ordinal);

    /// <summary>
    /// "morgen weer op kantoor", "morgen wieder erreichbar", "demain de retour": tomorrow told before the return word, where
    /// no return phrase comes first.
    /// </summary>
    private static DateOnly? TomorrowBeforeReturn(string text, DateOnly sent) =>
        text.AsSpan().ContainsAny(TomorrowWords) && TomorrowThenReturn().IsMatch(text) ? sent.AddDays(1) : null;

    private static readonly SearchValues<string> TomorrowWords = SearchValues.Create(["morgen", "tomorrow", "demain", "mañana", "manana", "amanhã", "amanha", "domani"], StringComparison.Ordinal);

    /// <summary>
    /// Turkish, Japanese and Chinese put the date before the word that says what it is: "5 Ocak tarihine kadar", "Pazartesi
    /// günü döneceğim", "1月5日まで", "1月5日(月)に戻ります", "1月5日返回". Only texts with one of those words are searched.
    /// </summary>
    private static DateOnly? DateBeforeItsWord(string text, DateOnly sent, bool monthFirst, bool writerMayBeADayBehind)
    {
        if (!text.AsSpan().ContainsAny(WordsAfterDates))
            return null;
        foreach (Match m in DateThenWord().Matches(text))
        {
            if (Resolve(m, sent, monthFirst, allowLoose: true, writerMayBeADayBehind) is { } date)
                return date;
        }
        return null;
    }

    private static readonly SearchValues<string> WordsAfterDates = SearchValues.Create(
        ["kadar", "tarih", "itibaren", "dön", "ofiste", "まで", "戻", "出社", "返回", "回来", "回到", "上班"], StringComparison.Ordinal);

    private static readonly SearchValues<string> WeekWords = SearchValues.Create(["week", "woche", "semaine", "semana", "settimana", "vecka", "uge", "uke", "viiko", "tygod", "týden", "hafta"], StringComparison.Ordinal);

    /// <summary>
    /// Whether the writer of a message with this Date may still be on the day before the Date's: a Date written in UTC
    /// (Exchange Online and many servers date everything so, whatever the writer's zone) before 10:00, when it is still
    /// the day before in the Americas (Hawaii, UTC−10, last). A Date with another offset is the writer's own clock.
    /// </summary>
    public static bool WriterMayBeADayBehind(DateTimeOffset date) => date.Offset == TimeSpan.Zero && date.TimeOfDay < TimeSpan.FromHours(10);

    /// <summary>The Monday of the week after the message's: the first working day of "next week".</summary>
    private static DateOnly MondayAfter(DateOnly sent) => sent.AddDays(7 - ((int)sent.DayOfWeek + 6) % 7);

    /// <summary>
    /// The last day of a range written with a dash or "a" and no other word for the return: "traveling on July 10-31",
    /// "out of the office December 20 - January 3", "12/20-1/3", "ausente de 20/12 a 03/01", "20.-31.12."; and the
    /// English ranges whose end is a bare day or whose word is not an until word of its own ("from March 1 to 15",
    /// "March 1st through the 15th", "between 24 December and 6 January"). Like an "until" date, it is the day the
    /// absence ends.
    /// </summary>
    private static DateOnly? RangeEnd(string text, DateOnly sent, bool monthFirst)
    {
        // Every range this reads has a dash, " a " or one of its English words between its dates.
        if (!text.AsSpan().ContainsAny(RangeSeparators))
            return null;
        foreach (Match start in RangeStart().Matches(text))
        {
            var at = start.Index + start.Length;
            var end = DateAfter().Match(text, at);
            // "– Tuesday 30 March": the weekday only names the day the date gives.
            if (end.Success && end.Groups["wd"].Success && DateAfter().Match(text, end.Index + end.Length) is { Success: true } dated
                && !dated.Groups["wd"].Success && dated.Groups["filler"].Length <= 6)
                end = dated;
            DateOnly? date = null;
            if (end.Success && end.Groups["filler"].Length <= 12 && !end.Groups["wd"].Success && !end.Groups["bd"].Success && !end.Groups["nextweek"].Success)
            {
                date = Resolve(end, sent, monthFirst, allowLoose: false);
            }
            else if (start.Groups["smn"].Success && BareDay().Match(text, at) is { Success: true } bare)
            {
                // "July 10-31": the end's month is the start's.
                var day = int.Parse(bare.Groups["day"].Value, CultureInfo.InvariantCulture);
                var startDay = int.Parse(start.Groups["sd"].Value, CultureInfo.InvariantCulture);
                if (day > startDay)
                    date = FromParts(day, Months[Fold(start.Groups["smn"].Value)], null, sent);
            }
            if (date is not null)
                return date;
        }
        return null;
    }

    private static readonly SearchValues<string> RangeSeparators = SearchValues.Create(
        ["-", "\u2013", "\u2014", " a ", " e ", " y ", " to ", " through ", " thru ", " till ", " until ", " and "], StringComparison.Ordinal);

    /// <param name="allowLoose">Whether a weekday alone, a day without a month ("the 7th") and "next week" are dates after
    /// every anchor (return phrases); otherwise only after an until word of its own.</param>
    private static DateOnly? FirstAfter(Regex anchor, string text, DateOnly sent, bool monthFirst, bool allowLoose, bool writerMayBeADayBehind)
    {
        foreach (Match a in anchor.Matches(text))
        {
            var start = a.Index + a.Length;
            // The date must follow the phrase closely: a few filler words ("on the", "am", "le", "dia", weekday names).
            // The expression is anchored where the phrase ends, so it is tried there once, not along the rest of the text.
            var m = DateAfter().Match(text, start);
            if (!m.Success || m.Groups["filler"].Length > 24)
                continue;
            // "Monday, March 9": the weekday only names the day the date already gives.
            if (m.Groups["wd"].Success)
            {
                var next = DateAfter().Match(text, m.Index + m.Length);
                if (next.Success && !next.Groups["wd"].Success && next.Groups["filler"].Length <= 6)
                    m = next;
            }
            // "ab dem 3.4.", "vanaf 14 juni", "à partir du 5 janvier" start a return only when a return word follows
            // the date at once ("ab dem 3.4. wieder im Büro") or comes just before ("wieder ab dem 3.4."):
            // "ab dem 16.3. nicht im Büro" starts the absence.
            if (a.Groups["from"].Success)
            {
                var after = text.Substring(m.Index + m.Length, Math.Min(40, text.Length - m.Index - m.Length));
                var before = text.Substring(Math.Max(0, a.Index - 20), Math.Min(20, a.Index));
                var returnAfter = ReturnWordAfter().Match(after);
                if (!returnAfter.Success && !ReturnWordBefore().IsMatch(before))
                    continue;
                // "à partir du 20/12/2026 de retour le 04/01/2027" (Lotus Notes): the return word has a date of its own,
                // and this one starts the absence.
                if (returnAfter.Success && DateAfter().Match(after, returnAfter.Length) is { Success: true } own && own.Groups["filler"].Length <= 8)
                    continue;
            }
            // "until Friday", "bis Freitag", "jusqu'à vendredi": a weekday ends the absence after an until word of its own,
            // not after "to", "au", "al" ("available Monday to Friday") nor after a weekday ("Montag bis Freitag", office hours).
            // So do "until the 7th" and "until next week".
            var looseHere = allowLoose || (a.Groups["strong"].Success && !WeekdayBefore().IsMatch(text.AsSpan(Math.Max(0, a.Index - 14), Math.Min(14, a.Index))));
            var date = Resolve(m, sent, monthFirst, looseHere, writerMayBeADayBehind);
            if (date is not null)
                return date;
        }
        return null;
    }

    private static DateOnly? Resolve(Match m, DateOnly sent, bool monthFirst, bool allowLoose, bool writerMayBeADayBehind = false)
    {
        int day, month;
        int? year = null;
        if (m.Groups["iy"].Success)
        {
            year = int.Parse(m.Groups["iy"].Value, CultureInfo.InvariantCulture);
            month = int.Parse(m.Groups["im"].Value, CultureInfo.InvariantCulture);
            day = int.Parse(m.Groups["id"].Value, CultureInfo.InvariantCulture);
        }
        else if (m.Groups["na"].Success)
        {
            var a = int.Parse(m.Groups["na"].Value, CultureInfo.InvariantCulture);
            var b = int.Parse(m.Groups["nb"].Value, CultureInfo.InvariantCulture);
            var dotted = m.Groups["sep"].Value == ".";
            // Dashes ("20-12-2026", "3-1" in Dutch) follow the language's order but are never turned round when the
            // second number is over 12: "10-31" is more likely a range's days than 31 October.
            var dashed = m.Groups["sep"].Value == "-";
            var first = monthFirst && !dotted;
            if (first && a > 12)
                first = false;
            else if (!first && !dashed && b > 12 && a <= 12)
                first = true;
            (month, day) = first ? (a, b) : (b, a);
            if (m.Groups["ny"].Success)
                year = ExpandYear(m.Groups["ny"].Value);
        }
        else if (m.Groups["cm"].Success)
        {
            // 1月5日, 2027年1月5日: year, month and day in that order, each with its sign.
            month = int.Parse(m.Groups["cm"].Value, CultureInfo.InvariantCulture);
            day = int.Parse(m.Groups["cd"].Value, CultureInfo.InvariantCulture);
            if (m.Groups["cy"].Success)
                year = int.Parse(m.Groups["cy"].Value, CultureInfo.InvariantCulture);
        }
        else if (m.Groups["dmn"].Success)
        {
            day = int.Parse(m.Groups["dd"].Value, CultureInfo.InvariantCulture);
            month = Months[Fold(m.Groups["dmn"].Value)];
            if (m.Groups["dy"].Success)
                year = ExpandYear(m.Groups["dy"].Value);
        }
        else if (m.Groups["mmn"].Success)
        {
            day = int.Parse(m.Groups["md"].Value, CultureInfo.InvariantCulture);
            month = Months[Fold(m.Groups["mmn"].Value)];
            if (m.Groups["my"].Success)
                year = ExpandYear(m.Groups["my"].Value);
        }
        else if (m.Groups["tomorrow"].Success)
        {
            return sent.AddDays(1);
        }
        else if (m.Groups["nextweek"].Success && allowLoose)
        {
            return MondayAfter(sent);
        }
        else if (m.Groups["bd"].Success && allowLoose && (m.Groups["bs"].Success || DayArticle().IsMatch(m.Groups["filler"].Value)))
        {
            return NextDay(int.Parse(m.Groups["bd"].Value, CultureInfo.InvariantCulture), sent);
        }
        else if (m.Groups["wd"].Success && allowLoose)
        {
            var target = Weekdays[Fold(m.Groups["wd"].Value)];
            var ahead = ((int)target - (int)sent.DayOfWeek + 7) % 7;
            // The message's own weekday is the one after next, unless the writer may still be on the day before: "back on
            // Monday" written on Sunday evening in California and dated Monday morning in UTC is that Monday, not the
            // next. (Written on the Monday itself it is a notice left on through its last day: that day is no worse.)
            if (ahead == 0 && writerMayBeADayBehind)
                return sent;
            return sent.AddDays(ahead == 0 ? 7 : ahead);
        }
        else
        {
            return null;
        }
        return FromParts(day, month, year, sent);
    }

    /// <summary>
    /// A day of the month without a month ("back on the 7th", "de retour le 7"): the next such day from the message's,
    /// in this month when it is still ahead, else in the first month after that has it (the 31st after 5 November is
    /// 31 December). Unlike a day with a month it is never long past: the writer did not name the month because it is
    /// this one or the next. The message's own day and the day before count as this month's, with a day's slack for
    /// time zones as for a date with a month: a notice written on the evening of the 6th in California is often dated
    /// the 7th in UTC, and its "back on the 7th" is the next morning, not a month later.
    /// </summary>
    private static DateOnly? NextDay(int day, DateOnly sent)
    {
        if (day is < 1 or > 31)
            return null;
        var earliest = sent.AddDays(-1);
        var month = new DateOnly(earliest.Year, earliest.Month, 1);
        for (var ahead = 0; ahead <= 3; ahead++, month = month.AddMonths(1))
        {
            if (day <= DateTime.DaysInMonth(month.Year, month.Month) && new DateOnly(month.Year, month.Month, day) is var candidate && candidate >= earliest)
                return candidate;
        }
        return null;
    }

    private static DateOnly? FromParts(int day, int month, int? year, DateOnly sent)
    {
        if (month is < 1 or > 12 || day is < 1 or > 31)
            return null;
        // A day before the message was sent (a day's slack for time zones) is no return: a notice left on since then
        // ("back on 2 November", sent on 10 December), or a past day the text mentions ("I was back on 3 November but
        // am away again until 5 January"). The caller then looks at the next date in the text.
        var earliest = sent.AddDays(-1);
        if (year is { } y)
        {
            if (y is <= 1990 or >= NoReturnFromYear || day > DateTime.DaysInMonth(y, month))
                return null;
            var dated = new DateOnly(y, month, day);
            // "back on 4 January 2026" sent on 21 December 2026: last year's number, written out of habit, for the
            // January just ahead.
            if (y == sent.Year && dated < earliest && day <= DateTime.DaysInMonth(y + 1, month) && new DateOnly(y + 1, month, day) is var next
                && next <= sent.AddDays(StaleDays))
                return next;
            return dated >= earliest ? dated : null;
        }
        // No year: the next such date on or after the message date, this year or the next, unless the day passed within
        // the last StaleDays: "until 2 November" sent on 10 December is a notice left on, not a return eleven months
        // away. A date neither year has (29 February outside leap years) is a mistake in the notice, not a pause of years.
        for (var candidateYear = sent.Year - 1; candidateYear <= sent.Year + 1 && candidateYear <= DateOnly.MaxValue.Year; candidateYear++)
        {
            if (candidateYear < DateOnly.MinValue.Year || day > DateTime.DaysInMonth(candidateYear, month))
                continue;
            var candidate = new DateOnly(candidateYear, month, day);
            if (candidate >= earliest)
                return candidate;
            if (candidate >= sent.AddDays(-StaleDays))
                return null;
        }
        return null;
    }

    /// <summary>How long ago a date without a year may have passed and still be read as that past day, not next year's.</summary>
    private const int StaleDays = 60;

    private static int ExpandYear(string value)
    {
        var y = int.Parse(value, CultureInfo.InvariantCulture);
        return y < 100 ? 2000 + y : y;
    }

    /// <summary>A month's or weekday's name without its accents ("février", "poniedziałek", "lørdag", "salı" as "fevrier",
    /// "poniedzialek", "lordag", "sali"), so that every spelling the expressions allow finds its entry.</summary>
    private static string Fold(string name)
    {
        var decomposed = name.TrimEnd('.').Normalize(NormalizationForm.FormD);
        var folded = new StringBuilder(decomposed.Length);
        foreach (var c in decomposed)
        {
            if (CharUnicodeInfo.GetUnicodeCategory(c) != UnicodeCategory.NonSpacingMark)
                folded.Append(c switch { 'ł' => 'l', 'ø' => 'o', 'ı' => 'i', _ => c });
        }
        return folded.ToString();
    }

    private static Dictionary<string, int> BuildMonths()
    {
        var map = new Dictionary<string, int>(StringComparer.Ordinal);
        void Add(int month, params string[] names)
        {
            foreach (var n in names)
                map[Fold(n)] = month;
        }
        Add(1, "january", "jan", "januar", "jänner", "janvier", "janv", "enero", "ene", "janeiro", "gennaio", "gen", "januari");
        Add(2, "february", "feb", "februar", "février", "fevrier", "févr", "fevr", "febrero", "fevereiro", "fev", "febbraio", "februari");
        Add(3, "march", "mar", "märz", "marz", "mrz", "mär", "mars", "marzo", "março", "marco", "maart", "mrt");
        Add(4, "april", "apr", "avril", "avr", "abril", "abr", "aprile");
        Add(5, "may", "mai", "mayo", "maio", "maggio", "mag", "mei");
        Add(6, "june", "jun", "juni", "juin", "junio", "junho", "giugno", "giu");
        Add(7, "july", "jul", "juli", "juillet", "juil", "julio", "julho", "luglio", "lug");
        Add(8, "august", "aug", "août", "aout", "agosto", "ago", "augustus");
        Add(9, "september", "sep", "sept", "septembre", "septiembre", "setiembre", "set", "setembro", "settembre");
        Add(10, "october", "oct", "oktober", "okt", "octobre", "octubre", "outubro", "out", "ottobre", "ott");
        Add(11, "november", "nov", "novembre", "noviembre", "novembro");
        Add(12, "december", "dec", "dezember", "dez", "décembre", "decembre", "déc", "diciembre", "dic", "dezembro", "dicembre");
        // Swedish, Danish and Norwegian (those above them are the same words), Finnish (with the partitive of "5. tammikuuta"),
        // Polish and Czech (the genitive a date takes, and Polish nominatives), Turkish.
        Add(1, "tammikuu", "tammikuuta", "stycznia", "styczeń", "ledna", "ocak");
        Add(2, "helmikuu", "helmikuuta", "lutego", "luty", "února", "unora", "şubat", "subat");
        Add(3, "marts", "maaliskuu", "maaliskuuta", "marca", "marzec", "března", "brezna", "mart");
        Add(4, "huhtikuu", "huhtikuuta", "kwietnia", "kwiecień", "dubna", "nisan");
        Add(5, "maj", "toukokuu", "toukokuuta", "maja", "května", "kvetna", "mayıs", "mayis");
        Add(6, "kesäkuu", "kesäkuuta", "czerwca", "czerwiec", "června", "cervna", "haziran");
        Add(7, "heinäkuu", "heinäkuuta", "lipca", "lipiec", "července", "cervence", "temmuz");
        Add(8, "augusti", "elokuu", "elokuuta", "sierpnia", "sierpień", "srpna", "ağustos", "agustos");
        Add(9, "syyskuu", "syyskuuta", "września", "wrzesień", "září", "zari", "eylül", "eylul");
        Add(10, "lokakuu", "lokakuuta", "października", "październik", "října", "rijna", "ekim");
        Add(11, "marraskuu", "marraskuuta", "listopada", "listopad", "listopadu", "kasım", "kasim");
        Add(12, "desember", "joulukuu", "joulukuuta", "grudnia", "grudzień", "prosince", "aralık", "aralik");
        return map;
    }

    private static Dictionary<string, DayOfWeek> BuildWeekdays()
    {
        var map = new Dictionary<string, DayOfWeek>(StringComparer.Ordinal);
        void Add(DayOfWeek day, params string[] names)
        {
            foreach (var n in names)
                map[Fold(n)] = day;
        }
        Add(DayOfWeek.Monday, "monday", "montag", "lundi", "lunes", "segunda-feira", "segunda", "lunedì", "lunedi", "maandag");
        Add(DayOfWeek.Tuesday, "tuesday", "dienstag", "mardi", "martes", "terça-feira", "terça", "terca-feira", "terca", "martedì", "martedi", "dinsdag");
        Add(DayOfWeek.Wednesday, "wednesday", "mittwoch", "mercredi", "miércoles", "miercoles", "quarta-feira", "quarta", "mercoledì", "mercoledi", "woensdag");
        Add(DayOfWeek.Thursday, "thursday", "donnerstag", "jeudi", "jueves", "quinta-feira", "quinta", "giovedì", "giovedi", "donderdag");
        Add(DayOfWeek.Friday, "friday", "freitag", "vendredi", "viernes", "sexta-feira", "sexta", "venerdì", "venerdi", "vrijdag");
        Add(DayOfWeek.Saturday, "saturday", "samstag", "samedi", "sábado", "sabado", "sabato", "zaterdag");
        Add(DayOfWeek.Sunday, "sunday", "sonntag", "dimanche", "domingo", "domenica", "zondag");
        // Swedish, Danish and Norwegian, Finnish (and its "on Monday" form), Polish and Czech (and the forms after "w", "v",
        // "do", "od"), Turkish.
        Add(DayOfWeek.Monday, "måndag", "mandag", "maanantai", "maanantaina", "poniedziałek", "poniedziałku", "pondělí", "pazartesi");
        Add(DayOfWeek.Tuesday, "tisdag", "tirsdag", "tiistai", "tiistaina", "wtorek", "wtorku", "úterý", "salı", "sali");
        Add(DayOfWeek.Wednesday, "onsdag", "keskiviikko", "keskiviikkona", "środa", "środę", "środy", "středa", "středu", "středy", "çarşamba", "carsamba");
        Add(DayOfWeek.Thursday, "torsdag", "torstai", "torstaina", "czwartek", "czwartku", "čtvrtek", "čtvrtka", "perşembe", "persembe");
        Add(DayOfWeek.Friday, "fredag", "perjantai", "perjantaina", "piątek", "piątku", "pátek", "pátku", "cuma");
        Add(DayOfWeek.Saturday, "lördag", "lørdag", "lauantai", "lauantaina", "sobota", "sobotę", "soboty", "sobotu", "cumartesi");
        Add(DayOfWeek.Sunday, "söndag", "søndag", "sunnuntai", "sunnuntaina", "niedziela", "niedzielę", "niedzieli", "neděle", "neděli", "pazar");
        return map;
    }

    [GeneratedRegex(@"\b(?:(?:expected )?return date|date of return|date de retour|r[üu]ckkehr(?:datum)?|fecha de (?:regreso|reincorporaci[óo]n)|" +
        @"data de (?:retorno|regresso)|data (?:di|del) rientro|terugkeerdatum|" +
        @"(?:i(?:'ll| will| shall)? be )?back(?: in(?: the)? office| at (?:work|my desk)| to (?:the )?office| in)?|return(?:ing)?(?: to (?:the )?(?:office|work))?|i will return|" +
        @"(?:available|reachable|in the office) (?:again )?(?:on|from)|" +
        @"zur[üu]ck|wieder (?:im b[üu]ro|erreichbar|da|verf[üu]gbar|im hause?|am arbeitsplatz|im dienst)?|" +
        @"de retour(?: au (?:bureau|travail))?|retour(?: au (?:bureau|travail))?|je reviendrai|" +
        @"regreso|regresar[ée]|de vuelta|de volta|vuelvo(?: a la oficina)?|volver[ée]|estar[ée] disponible|me (?:re)?incorporo|me (?:re)?incorporar[ée]|" +
        @"(?:volto|voltarei|voltando|retorno|retornarei|retornando|regresso|regressarei|regressando)(?: ao (?:escrit[óo]rio|trabalho))?|estarei de volta|" +
        @"rientro(?: in (?:ufficio|sede)| al lavoro)?|rientrer[òo](?: in (?:ufficio|sede))?|ritorno|sar[òo] di ritorno|sar[òo] in ufficio|" +
        @"(?:sar[òo] )?(?:di nuovo|nuovamente) (?:in ufficio|in sede|disponibile|raggiungibile)|" +
        @"terug|weer (?:aanwezig|op kantoor|bereikbaar|beschikbaar)|" +
        // Swedish, Danish and Norwegian, Finnish, Polish, Czech.
        @"(?:[äa]r |er )?(?:tillbaka|tilbage|tilbake)(?: (?:p[åa] (?:kontoret|jobbet|arbejde|jobb)|i tj[äa]nst|igen))?|[åa]ter(?: p[åa] kontoret| i tj[äa]nst)?|" +
        @"palaan(?: toimistolle| t[öo]ihin)?|takaisin(?: toimistolla| t[öo]iss[äa])?|" +
        @"(?:wracam|wr[óo]c[ęe]|powr[óo]c[ęe])(?: do (?:biura|pracy))?|(?:b[ęe]d[ęe] )?z powrotem(?: w biurze)?|b[ęe]d[ęe] (?:ponownie )?(?:dost[ęe]pn[ya]|w biurze)|" +
        @"vr[áa]t[íi]m se|(?:budu )?zp[ěe]t(?: v kancel[áa][řr]i)?|(?:budu )?op[ěe]t (?:v kancel[áa][řr]i|k dispozici)|" +
        @"(?<from>ab|am|à partir du|a partir du|dès le|des le|a partir del?|a partir do dia|a partire dal|vanaf))\b|" +
        // Chinese: "我将于1月5日返回", no word boundary before the date.
        @"将于|预计于")]
    private static partial Regex ReturnAnchor();

    [GeneratedRegex(@"^\W*(?:(?:bin|ist|sind|ich|wir|gerne?|auch|dann|je|serai|sera|estar[ée]|estarei|estar[áa]|sar[òo]|ben|ik|i|will|shall|be|i'll|am|wieder|a|de|di|op)\W+){0,4}" +
        @"(?:wieder|zur[üu]ck|erreichbar|im b[üu]ro|de retour|disponible|en el despacho|de vuelta|de volta|dispon[íi]vel|di ritorno|in ufficio|terug|weer|aanwezig|back|available|in the office|" +
        @"tillbaka|tilbage|tilbake|takaisin|z powrotem|zp[ěe]t)")]
    private static partial Regex ReturnWordAfter();

    [GeneratedRegex(@"(?:wieder|zur[üu]ck|erreichbar|de retour|disponible|de vuelta|de volta|di ritorno|terug|weer|back|available|return)[^.!?\n]{0,12}$")]
    private static partial Regex ReturnWordBefore();

    // A weekday just before an until word: "montag bis ", "monday to ", "lunedì al " (office hours, not an absence).
    [GeneratedRegex(@"(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day|tag|woch|lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|lunes|martes|mi[ée]rcoles|jueves|viernes|" +
        @"s[áa]bado|domingo|segunda|ter[çc]a|quarta|quinta|sexta|-feira|d[iì]|sabato|domenica|dag|" +
        @"maanantai|perjantai|poniedzia[łl]ek|pi[ąa]tek|pond[ěe]l[íi]|p[áa]tek|pazartesi|cuma)\W*$")]
    private static partial Regex WeekdayBefore();

    // The start of a range and its dash (or Portuguese, Spanish, Italian " a "): "july 10-", "december 20 - ", "20 dec-",
    // "12/20-", "20/12 a ", "20.-". Group "smn" holds the start's month when it is named, for an end that is a bare day.
    [GeneratedRegex(@"(?<![0-9./-])(?:\b(?<smn>" + MonthNames + @")\.?\s+(?<sd>[0-9]{1,2})(?:st|nd|rd|th)?|" +
        @"[0-9]{1,2}[./][0-9]{1,2}(?:[./](?:[0-9]{4}|[0-9]{2}))?\.?|" +
        @"(?<sd>[0-9]{1,2})(?:st|nd|rd|th|er|e|º|ª|°)?\.?(?:\s*(?:of\s+|de\s+|di\s+)?(?<smn>" + MonthNames + @")\.?(?![a-z]))?)" +
        @"(?:\s*[-\u2013\u2014]\s*|\s+a\s+|\s+[ey]\s+(?:el\s+|o\s+)?(?=[0-9])|\s+(?:to|through|thru|till|until)\s+(?:the\s+)?|" +
        // English "between 24 December and 6 January": "and" only after "between", or "24 December and 31 December" (two
        // days named) would be a range too.
        @"(?<=\bbetween\s+(?:the\s+)?\S+(?:\s+\S+){0,2})\s+and\s+(?:the\s+)?)(?=[0-9]|[a-z])")]
    private static partial Regex RangeStart();

    // The end of "july 10-31": a day without a month, not the start of a number, a time or a numeric date.
    [GeneratedRegex(@"\G(?<day>[0-9]{1,2})(?:st|nd|rd|th)?(?![0-9]|[./:][0-9])")]
    private static partial Regex BareDay();

    // Swedish, Danish and Norwegian "till och med", "indtil", "til og med" are until words of their own; so is Polish and
    // Czech "do" before a weekday ("do piątku", "do pátku"), while before a date it is a weak one (in English "do" is a verb).
    [GeneratedRegex(@"\b(?:(?<strong>till och med|until|till|bis(?: (?:und mit|zum|einschlie(?:ß|ss)lich|inkl\.?))?|jusqu'(?:au|à)|hasta(?: el)?|at[ée](?: (?:o dia|dia|ao dia|a|à))?|(?:fino|sino) (?:alla|al|all'|a)|tot(?: en met)?|t/m|" +
        @"t\.o\.m|fram till|indtil|til og med|frem til|do dnia|do(?= (?:poniedzia|wtork|[śs]rody|czwartk|pi[ąa]tk|sobot|niedziel|pond[ěe]l|[úu]ter|st[řr]edy|[čc]tvrtk|p[áa]tk|ned[ěe]l)))|" +
        @"til|through|thru|to|jusqu’(?:au|à)|au|al|do)\b|" +
        // Chinese "至", "到": "休假至1月5日".
        @"(?<strong>至|到)")]
    private static partial Regex UntilAnchor();

    // Digits are [0-9] in these expressions, not \d: \d also matches other scripts' digits (Arabic-Indic ١٥, Devanagari १५),
    // which int.Parse refuses; such a date is not read rather than the notice's classification failing.
    // Where a return phrase ends: filler words of the seven languages (articles, prepositions, a weekday name, commas),
    // then the date. Anchored with \G: tried at that one place. Group "filler" holds the filler, so its length can be capped.
    [GeneratedRegex(@"\G(?<filler>[\s,:]*(?:(?:on|the|of|am|ab|dem|den|zum|le|du|el|la|d[ií]a|de|no|na|do|em|il|l'|dal|op|per|vanaf|from|by|a partir del?|à partir du|dès le|in data|" +
        @"next|n[äa]chsten|kommenden|prochain|pr[óo]xim[oa]|prossimo|komende|aanstaande|" +
        @"(?:mon|tues|wednes|thurs|fri|satur|sun)day|montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag|lundi|mardi|mercredi|jeudi|vendredi|" +
        @"lunes|martes|mi[ée]rcoles|jueves|viernes|segunda|ter[çc]a|quarta|quinta|sexta|-feira|luned[iì]|marted[iì]|mercoled[iì]|gioved[iì]|venerd[iì]|" +
        @"maandag|dinsdag|woensdag|donderdag|vrijdag|" +
        @"p[åa]|w|v|dnia|dne|od|at [0-9]{1,2}(?:[:.][0-9]{2})?\s*(?:am|pm|a\.m\.|p\.m\.)?|" + NewWeekdayNames + @"|,)[\s,]*)*?)" +
        @"(?<![0-9.])(?:" + DateWithMonth + "|" +

        // "next week" in the seven languages (the article before it is filler); a day without a month, which Resolve takes
        // only with an ordinal ("7th", "7.", "7e", "1er") or an article before it ("le 7", "el día 7", "il 7", "no dia 7"),
        // and never a count or a time ("in 2 weeks", "7 days", "3 pm").
        @"(?<nextweek>next week|the following week|n[äa]chste[nrs]? woche|kommende[nrs]? woche|semaine prochaine|semana que viene|semana que vem|" +
        @"pr[óo]xima semana|semana pr[óo]xima|prossima settimana|settimana prossima|volgende week|komende week|" +
        @"n[äa]sta vecka|n[æa]ste uge|neste uke|ensi viikolla|przysz[łl]ym tygodniu|p[řr][íi][šs]t[íi] t[ýy]den|gelecek hafta|haftaya)(?![a-z])|" +
        @"(?<bd>[0-9]{1,2})(?<bs>st|nd|rd|th|er|e|º|ª|°|\.(?![0-9]))?(?![0-9/:a-z]|[.,-][0-9])" +
        @"(?!\s*(?:" + Units + @")(?![a-z]))|" +
        @"(?<tomorrow>tomorrow|morgen|demain|ma[ñn]ana|amanh[ãa]|domani|i ?morgon|i ?morgen|huomenna|jutro|z[íi]tra|yar[ıi]n)(?![a-z])|" +
        Weekday + ")")]
    private static partial Regex DateAfter();

    // A date with its month, in every form the languages write one: ISO; numeric (3.4., 03/04/2027, 3-1; Czech and
    // Polish "5. 1. 2027" with spaces); a day and a month's name either way round; Japanese and Chinese 1月5日.
    private const string DateWithMonth =
        @"(?<iy>20[0-9][0-9])-(?<im>[0-9]{1,2})-(?<id>[0-9]{1,2})(?![0-9])|" +
        @"(?<na>[0-9]{1,2})(?<sep>[./-])(?<nb>[0-9]{1,2})(?:\k<sep>(?<ny>[0-9]{4}|[0-9]{2})(?![0-9]))?(?![0-9/]|-[0-9])|" +
        @"(?<na>[0-9]{1,2})(?<sep>\.) (?<nb>[0-9]{1,2})\.(?: ?(?<ny>[0-9]{4})(?![0-9]))?|" +
        @"(?<dd>[0-9]{1,2})(?:st|nd|rd|th|er|e|º|ª|°)?\.?\s*(?:of\s+|de\s+|di\s+)?(?<dmn>" + MonthNames + @")\.?(?![a-z])(?:,?\s*(?:de\s+|del\s+)?(?<dy>[0-9]{4})(?![0-9]))?|" +
        @"(?<mmn>" + MonthNames + @")\.?\s+(?<md>[0-9]{1,2})(?:st|nd|rd|th)?(?![0-9])(?:,?\s*(?<my>[0-9]{4})(?![0-9]))?|" +
        @"(?:(?<cy>20[0-9][0-9])\s*年\s*)?(?<cm>[0-9]{1,2})\s*月\s*(?<cd>[0-9]{1,2})\s*[日号]";

    private const string Weekday =
        @"(?<wd>(?:mon|tues|wednes|thurs|fri|satur|sun)day|montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag|lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|" +
        @"lunes|martes|mi[ée]rcoles|jueves|viernes|s[áa]bado|domingo|segunda-feira|ter[çc]a-feira|quarta-feira|quinta-feira|sexta-feira|" +
        @"luned[iì]|marted[iì]|mercoled[iì]|gioved[iì]|venerd[iì]|sabato|domenica|maandag|dinsdag|woensdag|donderdag|vrijdag|zaterdag|zondag|" + NewWeekdayNames + @")(?![a-z])";

    // Swedish, Danish and Norwegian, Finnish, Polish, Czech and Turkish weekdays, in the forms BuildWeekdays lists (longer
    // forms first where one starts another).
    private const string NewWeekdayNames =
        "m[åa]ndag|tisdag|tirsdag|onsdag|torsdag|fredag|l[öø]rdag|s[öø]ndag|" +
        "maanantaina|maanantai|tiistaina|tiistai|keskiviikkona|keskiviikko|torstaina|torstai|perjantaina|perjantai|lauantaina|lauantai|sunnuntaina|sunnuntai|" +
        "poniedzia[łl]ek|poniedzia[łl]ku|wtorek|wtorku|[śs]rod[aęy]|czwartek|czwartku|pi[ąa]tek|pi[ąa]tku|sobot[aęyu]|niedziel[aęi]|" +
        "pond[ěe]l[íi]|[úu]ter[ýy]|st[řr]ed[auy]|[čc]tvrtek|[čc]tvrtka|p[áa]tek|p[áa]tku|ned[ěe]l[ei]|" +
        "pazartesi|sal[ıi]|[çc]ar[şs]amba|per[şs]embe|cumartesi|cuma|pazar";

    // Turkish, Japanese and Chinese: a date, then the word that makes it the return or the last day away ("5 ocak tarihine
    // kadar", "pazartesi günü döneceğim", "1月5日まで", "1月5日(月)に戻ります", "1月5日返回"); a weekday or a day's suffix may stand between.
    [GeneratedRegex(@"(?<![0-9.])(?:" + DateWithMonth + "|" + Weekday + @")" +
        @"(?:\s*(?:\([^)]{1,3}\)|（[^）]{1,3}）|(?:周|星期)\S))?(?:\s*g[üu]n[üu])?(?:'?[a-zıüşçğö]{1,4})?\s*" +
        @"(?:tarihine kadar|tarihinde|tarihinden itibaren|itibaren|kadar|d[öo]n[üu]yorum|d[öo]nece[ğg]im|ofiste|まで|に戻|から出社|より出社|に出社|返回|回来|回到|上班)")]
    private static partial Regex DateThenWord();

    // What a number after a return phrase counts when it is not a day: "back in 2 weeks", "returning 7 days from now", "at 3 pm".
    private const string Units = "days?|weeks?|months?|hours?|minutes?|am|pm|a\\.m|p\\.m|tage?n?|wochen|monaten?|stunden|uhr|jours?|semaines|mois|heures?|h|" +
        "d[ií]as?|semanas|meses|horas?|giorni|settimane|mesi|ore|dagen|weken|maanden|uur";

    // The article or word before a day without a month that says it is a day: "the 7", "le 7", "el día 7", "il 7",
    // "no dia 7", "am 7", "dem 7".
    [GeneratedRegex(@"\b(?:the|le|el|il|l'|d[ií]a|am|dem|den|zum)[\s,]*$")]
    private static partial Regex DayArticle();

    // "next week" before a return word: "nächste woche wieder da", "volgende week terug", "la semaine prochaine de retour".
    [GeneratedRegex(@"\b(?:next week|n[äa]chste[nrs]? woche|kommende[nrs]? woche|semaine prochaine|semana que viene|semana que vem|pr[óo]xima semana|" +
        @"semana pr[óo]xima|prossima settimana|settimana prossima|volgende week|komende week)[\s,]+(?:\S+\s+){0,3}?" +
        @"(?:wieder|zur[üu]ck|back|de retour|de vuelta|de volta|di ritorno|di nuovo|terug|weer)\b")]
    private static partial Regex NextWeekThenReturn();

    // "Tomorrow" before a return word: "morgen weer op kantoor", "morgen wieder im büro", "demain de retour"; not "guten
    // morgen" nor "goedemorgen", which greet.
    [GeneratedRegex(@"(?<!guten |goede |goeie )\b(?:tomorrow|morgen|demain|ma[ñn]ana|amanh[ãa]|domani)[\s,]+(?:\S+\s+){0,3}?" +
        @"(?:wieder|zur[üu]ck|back|de retour|de vuelta|de volta|di ritorno|di nuovo|terug|weer)\b")]
    private static partial Regex TomorrowThenReturn();

    [GeneratedRegex(@"\b(?:(?:until|till|through|thru) (?:the )?end of|bis (?:zum )?ende|jusqu'(?:à|a|au) (?:la )?fin (?:du mois )?(?:d'|de )?|" +
        @"hasta (?:el |a )?(?:final(?:es)?|fin(?:ales)?) de|at[ée] (?:o |ao )?(?:final|fim) de|fino al(?:la)? fine di|tot (?:het )?eind(?:e)?) ?(?<m>" + MonthNames + @")(?![a-z])" +
        @"(?:,?\s*(?<y>20[0-9]{2})(?![0-9]))?")]
    private static partial Regex EndOfMonthPhrase();

    private const string MonthNames =
        "january|february|march|april|may|june|july|august|september|october|november|december|" +
        "januar|jänner|februar|märz|marz|mai|juni|juli|oktober|dezember|" +
        "janvier|février|fevrier|mars|avril|juin|juillet|août|aout|septembre|octobre|novembre|décembre|decembre|" +
        "enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre|" +
        "janeiro|fevereiro|março|marco|maio|junho|julho|setembro|outubro|novembro|dezembro|" +
        "gennaio|febbraio|aprile|maggio|giugno|luglio|settembre|ottobre|dicembre|" +
        "januari|februari|maart|mei|augustus|" +
        "jan|feb|mrz|mär|apr|jun|jul|aug|sept|sep|oct|okt|nov|dec|dez|janv|févr|fevr|avr|juil|déc|ene|abr|ago|dic|fev|out|set|gen|mag|giu|lug|ott|mrt|" +
        // Swedish, Danish, Norwegian, Finnish, Polish, Czech, Turkish (the ones not above).
        "augusti|marts|maj|desember|" +
        "tammikuuta|tammikuu|helmikuuta|helmikuu|maaliskuuta|maaliskuu|huhtikuuta|huhtikuu|toukokuuta|toukokuu|kesäkuuta|kesäkuu|heinäkuuta|heinäkuu|" +
        "elokuuta|elokuu|syyskuuta|syyskuu|lokakuuta|lokakuu|marraskuuta|marraskuu|joulukuuta|joulukuu|" +
        "stycznia|styczeń|lutego|luty|marca|marzec|kwietnia|kwiecień|maja|czerwca|czerwiec|lipca|lipiec|sierpnia|sierpień|września|wrzesień|" +
        "października|październik|listopada|listopadu|listopad|grudnia|grudzień|" +
        "ledna|února|března|dubna|května|června|července|srpna|září|října|prosince|" +
        "ocak|şubat|mart|nisan|mayıs|haziran|temmuz|ağustos|eylül|ekim|kasım|aralık";
}
