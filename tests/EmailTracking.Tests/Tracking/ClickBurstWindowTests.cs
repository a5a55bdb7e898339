using System.Net;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Tests.Tracking;

/// <summary>
/// A server whose burst window is ten seconds: for tests that click a second link only after the first has come back
/// through a live feed, which on a busy two-core machine can take longer than the default second.
/// </summary>
public abstract class WideClickBurstApp(DatabaseProvider provider) : AppFactory(provider)
{
    protected override void Configure(IWebHostBuilder builder) => builder.UseSetting("Tracking:Classifier:ClickBurstWindow", "00:00:10");
}

public sealed class WideClickBurstSqliteApp() : WideClickBurstApp(DatabaseProvider.Sqlite);

public sealed class WideClickBurstPostgresApp() : WideClickBurstApp(DatabaseProvider.Postgres);

/// <summary>
/// <c>Tracking:Classifier:ClickBurstWindow</c>: different links of a copy clicked within it of each other are one
/// scanner. Two links clicked 1.5 s apart are a person's clicks with the default second, and a scanner's with ten.
/// </summary>
public sealed class ClickBurstWindowTests(WideClickBurstSqliteApp wide, SqliteApp standard) : IClassFixture<WideClickBurstSqliteApp>, IClassFixture<SqliteApp>
{
    const string Chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36";

    static async Task<List<TrackingEvent>> TwoLinksApartAsync(AppFactory app)
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync(html: "<a href=\"https://example.com/1\">1</a><a href=\"https://example.com/2\">2</a>");
        string Link(int i) => reg.GetProperty("copies")[0].GetProperty("links")[i].GetProperty("trackedUrl").GetString()!;
        var browser = app.Anonymous(Chrome);
        async Task ClickAsync(int i)
        {
            using var res = await browser.GetAsync(TestApi.Path(Link(i)));
            Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        }
        await ClickAsync(0);
        await Task.Delay(1500);
        await ClickAsync(1);
        var id = Guid.Parse(reg.GetProperty("id").GetString()!);
        return app.WithDb(db => db.Events.AsNoTracking().Where(e => e.TrackedMessageId == id).OrderBy(e => e.Id).ToList());
    }

    [Fact]
    public async Task Links_clicked_a_second_and_a_half_apart_are_a_person_with_the_default_window()
    {
        var events = await TwoLinksApartAsync(standard);
        Assert.Equal(2, events.Count);
        Assert.All(events, e => Assert.Equal(Verdict.Human, e.Verdict));
    }

    [Fact]
    public async Task Links_clicked_a_second_and_a_half_apart_are_one_scanner_with_a_ten_second_window()
    {
        var events = await TwoLinksApartAsync(wide);
        Assert.Equal(2, events.Count);
        Assert.All(events, e => Assert.Equal((Verdict.Scanner, "several links clicked within 10 seconds"), (e.Verdict, e.Reason.Split(" (")[0])));
    }
}
