using System.Globalization;
using System.Linq.Expressions;
using EmailTracking.Server.Messages;
using Microsoft.AspNetCore.Http.Extensions;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Web;

/// <summary>
/// A place in a list shown newest first: a row's time (a message's list time, a document's or a sequence's creation)
/// and its id, which breaks ties so that every row has one place and none is shown twice or skipped across pages.
/// Written in a URL as <c>UTC-ticks_id</c>.
/// </summary>
public readonly record struct ListCursor(DateTimeOffset At, Guid Id)
{
    public static ListCursor Of(MessageSummary m) => new(m.SentAt ?? m.CreatedAt, m.Id);

    public override string ToString() => $"{At.UtcTicks.ToString(CultureInfo.InvariantCulture)}_{Id:N}";

    public static bool TryParse(string? text, out ListCursor cursor)
    {
        cursor = default;
        var parts = text?.Split('_');
        if (parts is not [var ticksText, var idText]
            || !long.TryParse(ticksText, NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
            || ticks > DateTimeOffset.MaxValue.UtcTicks
            || !Guid.TryParseExact(idText, "N", out var id))
        {
            return false;
        }
        cursor = new ListCursor(new DateTimeOffset(ticks, TimeSpan.Zero), id);
        return true;
    }
}

/// <summary>One page of a list, newest first, and where it is in the whole list.</summary>
/// <param name="Total">The rows of the list on every page.</param>
/// <param name="First">The position (from 1) of the page's first row in the whole list; 0 when there is none.</param>
/// <param name="Older">Where the page after this one starts (the "Older" link), or null on the last page.</param>
/// <param name="Newer">Where the page before this one ends (the "Newer" link), or null on the first page.</param>
public sealed record ListPage<T>(List<T> Rows, int Total, int First, ListCursor? Older, ListCursor? Newer)
{
    /// <summary>The position of the page's last row.</summary>
    public int Last => First + Rows.Count - 1;
}

/// <summary>The "Newer" and "Older" links under a page of a list (<c>Shared/_ListPager</c>); none is null on a list of one page.</summary>
/// <param name="Label">What the pages are of, for a screen reader ("Pages of documents").</param>
public sealed record ListPager(string Label, string? NewerHref, string? OlderHref)
{
    /// <summary>The links around a page of the list at <paramref name="path"/>, each with the cursor it continues from.</summary>
    public static ListPager For<T>(string label, string path, ListPage<T> page) =>
        new(label, page.Newer is { } n ? Href(path, "newer", n) : null, page.Older is { } o ? Href(path, "older", o) : null);

    static string Href(string path, string name, ListCursor cursor) => path + new QueryBuilder { { name, cursor.ToString() } };
}

/// <summary>
/// A list's order, newest first by a time and then by id, and its keyset pages: "older than this row" or "newer than
/// this row", so that rows added while someone reads the list shift nothing under them and every row can be reached
/// (the Documents and Sequences pages showed their newest 500 and no more). The order and the comparisons are one and
/// the same, in the database: on SQLite ids compare as their stored bytes, on PostgreSQL as uuids, and neither is
/// .NET's Guid order, so nothing here orders in memory.
/// </summary>
public sealed class ListOrder<T>
{
    readonly Expression<Func<T, DateTimeOffset>> at;
    readonly Expression<Func<T, Guid>> id;
    readonly Expression<Func<T, ListCursor>> cursor;
    readonly Func<T, ListCursor> of;

    /// <param name="at">The row's time in the list (a lambda the database can run).</param>
    /// <param name="id">The row's id.</param>
    public ListOrder(Expression<Func<T, DateTimeOffset>> at, Expression<Func<T, Guid>> id)
    {
        this.at = at;
        // One parameter for both, so that they can be used in one lambda.
        this.id = Expression.Lambda<Func<T, Guid>>(
            new Parameter(id.Parameters[0], at.Parameters[0]).Visit(id.Body), at.Parameters[0]);
        var ctor = typeof(ListCursor).GetConstructor([typeof(DateTimeOffset), typeof(Guid)])!;
        cursor = Expression.Lambda<Func<T, ListCursor>>(Expression.New(ctor, at.Body, this.id.Body), at.Parameters[0]);
        of = cursor.Compile();
    }

    public IOrderedQueryable<T> Newest(IQueryable<T> q) => q.OrderByDescending(at).ThenByDescending(id);

    public IQueryable<T> OlderThan(IQueryable<T> q, ListCursor c) => q.Where(Compare(c, ExpressionType.LessThan, ExpressionType.LessThan));

    public IQueryable<T> AtOrOlderThan(IQueryable<T> q, ListCursor c) => q.Where(Compare(c, ExpressionType.LessThan, ExpressionType.LessThanOrEqual));

    public IQueryable<T> NewerThan(IQueryable<T> q, ListCursor c) => q.Where(Compare(c, ExpressionType.GreaterThan, ExpressionType.GreaterThan));

    /// <summary>The rows of the page asked for (newest first), and the cursor it was asked by.</summary>
    /// <remarks>
    /// A cursor that cannot be read (cut short when copied, edited by hand) gives the first page rather than an error;
    /// so does one past either end, where there is nothing to show.
    /// </remarks>
    public async Task<(IQueryable<T> Rows, ListCursor? Shown, bool ShownIsOlder)> WindowAsync(IQueryable<T> visible, string? older, string? newer,
        int size, CancellationToken ct)
    {
        if (ListCursor.TryParse(older, out var o) && await OlderThan(visible, o).AnyAsync(ct))
        {
            return (Newest(OlderThan(visible, o)).Take(size), o, true);
        }
        if (ListCursor.TryParse(newer, out var n))
        {
            // The page ends just before the cursor and starts size rows up from it. With fewer than a page above it,
            // those are the newest there are: that is the first page.
            var start = await NewerThan(visible, n).OrderBy(at).ThenBy(id).Skip(size - 1).Select(cursor).Take(1).ToListAsync(ct);
            if (start is [var s]) return (Newest(AtOrOlderThan(visible, s)).Take(size), n, false);
        }
        return (Newest(visible).Take(size), null, false);
    }

    /// <summary>The page asked for, its position in the list and the cursors of the pages on either side.</summary>
    public async Task<ListPage<T>> PageAsync(IQueryable<T> visible, string? older, string? newer, int size, CancellationToken ct)
    {
        var (query, _, _) = await WindowAsync(visible, older, newer, size, ct);
        var rows = await query.ToListAsync(ct);
        var total = await visible.CountAsync(ct);
        if (rows.Count == 0) return new ListPage<T>(rows, total, 0, null, null);
        var top = Of(rows[0]);
        var first = await NewerThan(visible, top).CountAsync(ct) + 1;
        return new ListPage<T>(rows, total, first,
            first - 1 + rows.Count < total ? Of(rows[^1]) : null,
            first > 1 ? top : null);
    }

    /// <summary>A row's place in the list.</summary>
    public ListCursor Of(T row) => of(row);

    /// <summary>
    /// time op c.At, or the same time and id op c.Id: the comparison with the cursor, written as the compiler writes
    /// it for a lambda, with the cursor's values read from an object so that the database is sent parameters.
    /// </summary>
    Expression<Func<T, bool>> Compare(ListCursor c, ExpressionType time, ExpressionType tie)
    {
        var values = Expression.Constant(new Values { At = c.At, Id = c.Id });
        var cAt = Expression.Field(values, nameof(Values.At));
        var cId = Expression.Field(values, nameof(Values.Id));
        var compareTo = typeof(Guid).GetMethod(nameof(Guid.CompareTo), [typeof(Guid)])!;
        var body = Expression.OrElse(
            Expression.MakeBinary(time, at.Body, cAt),
            Expression.AndAlso(
                Expression.Equal(at.Body, cAt),
                Expression.MakeBinary(tie, Expression.Call(id.Body, compareTo, cId), Expression.Constant(0))));
        return Expression.Lambda<Func<T, bool>>(body, at.Parameters[0]);
    }

    sealed class Values
    {
        public DateTimeOffset At;
        public Guid Id;
    }

    sealed class Parameter(ParameterExpression from, ParameterExpression to) : ExpressionVisitor
    {
        protected override Expression VisitParameter(ParameterExpression node) => node == from ? to : node;
    }
}
