using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Api;

/// <summary>
/// A team is one team whatever case its name is given in: "Acme" and "ACME" added at the same moment (two `et users add`,
/// a script) make one team, which both users join, instead of two teams each with its own admin.
/// </summary>
public abstract class TeamNameTests(AppFactory app)
{
    [Fact]
    public async Task Teams_named_alike_but_for_case_made_at_the_same_moment_are_one_team()
    {
        for (var round = 0; round < 5; round++)
        {
            var id = Guid.NewGuid().ToString("N")[..12];
            var made = await Task.WhenAll(app.NewUserAsync(team: $"Acme {id}"), app.NewUserAsync(team: $" ACME {id.ToUpperInvariant()}"));
            Assert.Equal(made[0].TeamId, made[1].TeamId);
            var team = app.WithDb(db => db.Teams.AsNoTracking().Where(t => t.NormalizedName == Team.Normalize($"acme {id}")).ToList());
            Assert.Equal(made[0].TeamId, Assert.Single(team).Id);
            // The first of the two made it and administers it; the other joined it as asked (a member).
            var roles = app.WithDb(db => db.Users.Where(u => u.TeamId == made[0].TeamId).Select(u => u.Role).OrderBy(r => r).ToList());
            Assert.Equal([TeamRole.Member, TeamRole.Admin], roles);
        }
    }

    [Fact]
    public async Task A_plan_is_set_on_the_team_named_in_any_case()
    {
        var id = Guid.NewGuid().ToString("N")[..12];
        var user = await app.NewUserAsync(team: $"Encom {id}", plan: Plan.Solo);
        using var scope = app.Services.CreateScope();
        var changed = await scope.ServiceProvider.GetRequiredService<AccountService>().SetPlanAsync($"ENCOM {id.ToUpperInvariant()}", Plan.Team);
        Assert.Equal((user.TeamId, $"Encom {id}"), (changed.Id, changed.Name));
        Assert.Equal(Plan.Team, app.WithDb(db => db.Teams.Single(t => t.Id == user.TeamId).Plan));
    }
}

public sealed class TeamNamesOnSqlite(SqliteApp app) : TeamNameTests(app), IClassFixture<SqliteApp>;

public sealed class TeamNamesOnPostgres(PostgresApp app) : TeamNameTests(app), IClassFixture<PostgresApp>;
