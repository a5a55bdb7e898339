using EmailTracking.Server;
using EmailTracking.Server.Salesforce;
using Microsoft.Extensions.Configuration;

namespace EmailTracking.Tests.Salesforce;

/// <summary><c>Salesforce:JwtTeams</c>: which teams may act as the server's JWT user, as configuration names them.</summary>
public sealed class SalesforceJwtTeamsTests
{
    static IConfiguration Config(params (string Key, string Value)[] pairs) =>
        new ConfigurationBuilder().AddInMemoryCollection(pairs.Select(p => new KeyValuePair<string, string?>(p.Key, p.Value))).Build();

    [Fact]
    public void The_setting_is_a_list_or_one_team_as_an_environment_variable_gives_it()
    {
        var id = Guid.NewGuid();
        Assert.Equal(["Encom", id.ToString()],
            ServerSetup.SalesforceJwtTeams(Config(("Salesforce:JwtTeams:0", "Encom"), ("Salesforce:JwtTeams:1", $" {id} "))));
        // One value is one team, commas and all: a team's name may hold one.
        var single = Config(("Salesforce:JwtTeams", "Encom, Inc."));
        Assert.Equal(["Encom, Inc."], ServerSetup.SalesforceJwtTeams(single));
        Assert.Empty(single.GetSection(SalesforceOptions.Section).Get<SalesforceOptions>()!.JwtTeams);
        Assert.Empty(ServerSetup.SalesforceJwtTeams(Config()));
    }

    [Fact]
    public void A_team_is_named_by_its_exact_name_or_its_id_and_none_is_when_the_setting_is_empty()
    {
        var encom = Guid.NewGuid();
        var other = Guid.NewGuid();
        var o = new SalesforceOptions { JwtTeams = ["Encom", other.ToString().ToUpperInvariant()] };
        Assert.True(o.JwtAllows(encom, "Encom"));
        Assert.True(o.JwtAllows(other, "Dillinger Systems"));
        Assert.False(o.JwtAllows(encom, "encom"));
        Assert.False(o.JwtAllows(Guid.NewGuid(), "Encom2"));
        Assert.False(new SalesforceOptions().JwtAllows(encom, "Encom"));
    }
}
