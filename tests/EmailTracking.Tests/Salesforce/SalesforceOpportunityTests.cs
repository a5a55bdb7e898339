using System.Net;
using System.Net.Http.Json;
using EmailTracking.Data;
using EmailTracking.Server.Outbox;
using EmailTracking.Tests.Fakes;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Salesforce;

/// <summary>The server with <c>Salesforce:RelateToOpportunity</c> on (it is off by default).</summary>
public sealed class SalesforceOpportunityApp() : SalesforceApp(DatabaseProvider.Sqlite)
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.UseSetting("Salesforce:RelateToOpportunity", "true");
    }
}

/// <summary>
/// A Contact's Task on an open Opportunity when exactly one fits: the only open one the Contact has a contact role on,
/// else the Account's only open one; otherwise on the Account, saying why. Errors leave nothing behind.
/// </summary>
public sealed class SalesforceOpportunityTests(SalesforceOpportunityApp app) : IClassFixture<SalesforceOpportunityApp>
{
    FakeSalesforce Sf => app.Salesforce;

    async Task<(TestUser Admin, Guid Connection)> ConnectAsync()
    {
        var admin = await app.NewJwtAdminAsync();
        var res = await admin.Client.PostAsJsonAsync("/api/salesforce/connect-jwt", new { }, TestApi.Json);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        return (admin, app.WithDb(db => db.SalesforceConnections.AsNoTracking().Single(c => c.TeamId == admin.TeamId)).Id);
    }

    static OutboxMessage Sent(TestUser u, params string[] to) => new(Random.Shared.NextInt64(1, long.MaxValue), $"evt-{Guid.NewGuid():N}", 1,
        new OutboxPayload(OutboxEventTypes.MessageSent, DateTimeOffset.UtcNow, u.TeamId, u.Id, u.Email, Guid.NewGuid(), "Proposal",
            DateTimeOffset.UtcNow, to.Length == 1 ? to[0] : null, to, null, null, null, null, "human", null, new OutboxSummary(0, 0, 0, false)));

    async Task<DeliveryResult> DeliverAsync(Guid connection, OutboxMessage message)
    {
        using var scope = app.Services.CreateScope();
        return await scope.ServiceProvider.GetRequiredKeyedService<IDeliveryTarget>("salesforce").DeliverAsync(connection, message, CancellationToken.None);
    }

    static string Unique(string local) => $"{local}.{Guid.NewGuid():N}"[..(local.Length + 9)] + "@encom.test";

    string? WhatOf(DeliveryResult r) => Sf.All("Task").Single(t => t.Id == r.ExternalId)["WhatId"];

    [Fact]
    public async Task The_only_open_Opportunity_the_Contact_has_a_role_on_is_the_Tasks_WhatId()
    {
        var (admin, id) = await ConnectAsync();
        var account = Sf.AddAccount("Encom");
        var email = Unique("alan");
        var contact = Sf.AddContact(email, account);
        var open = Sf.AddOpportunity(account);
        Sf.AddContactRole(open, contact, primary: true);
        Sf.AddContactRole(Sf.AddOpportunity(account, closed: true), contact);
        Sf.AddOpportunity(account, name: "Another open one, without this Contact");

        var result = await DeliverAsync(id, Sent(admin, email));
        Assert.Equal(DeliveryOutcome.Delivered, result.Outcome);
        Assert.Equal(open, WhatOf(result));
        Assert.Equal("On the open Opportunity the Contact has a role on.", result.Detail);

        // A role on a second open Opportunity: which one the email is about is a guess, so the Account.
        Sf.AddContactRole(Sf.AddOpportunity(account), contact);
        var two = await DeliverAsync(id, Sent(admin, email));
        Assert.Equal(account, WhatOf(two));
        Assert.Equal("On the Account: the Contact has a role on 2 open Opportunities.", two.Detail);
    }

    [Fact]
    public async Task A_team_that_chose_the_Account_keeps_it_while_the_server_relates_other_teams_to_Opportunities()
    {
        var (chooser, chooserId) = await ConnectAsync();
        var (other, otherId) = await ConnectAsync();
        var put = await chooser.Client.PutAsJsonAsync("/api/salesforce", new { relateToOpportunity = "never" }, TestApi.Json);
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        var account = Sf.AddAccount("Encom");
        var email = Unique("ram");
        var contact = Sf.AddContact(email, account);
        var open = Sf.AddOpportunity(account);
        Sf.AddContactRole(open, contact);

        var queries = Sf.Queries.Count;
        var chosen = await DeliverAsync(chooserId, Sent(chooser, email));
        Assert.Equal(account, WhatOf(chosen));
        Assert.DoesNotContain(Sf.Queries.Skip(queries), q => q.Contains("Opportunity", StringComparison.Ordinal));
        var unchosen = await DeliverAsync(otherId, Sent(other, email));
        Assert.Equal(open, WhatOf(unchosen));
    }

    [Fact]
    public async Task Without_a_role_the_Accounts_only_open_Opportunity_is_used_and_several_leave_the_Account()
    {
        var (admin, id) = await ConnectAsync();
        var account = Sf.AddAccount("Dillinger");
        var email = Unique("ed");
        Sf.AddContact(email, account);
        Sf.AddOpportunity(account, closed: true);
        var none = await DeliverAsync(id, Sent(admin, email));
        Assert.Equal(account, WhatOf(none));
        Assert.Null(none.Detail);

        var open = Sf.AddOpportunity(account);
        var one = await DeliverAsync(id, Sent(admin, email));
        Assert.Equal(open, WhatOf(one));
        Assert.Equal("On the Account's only open Opportunity.", one.Detail);

        Sf.AddOpportunity(account);
        var several = await DeliverAsync(id, Sent(admin, email));
        Assert.Equal(account, WhatOf(several));
        Assert.Equal("On the Account: it has several open Opportunities.", several.Detail);

        // A Lead's Task has no WhatId, and no Opportunity is looked up for it.
        var lead = Unique("quorra");
        Sf.AddLead(lead);
        var queries = Sf.Queries.Count;
        var onLead = await DeliverAsync(id, Sent(admin, lead));
        Assert.Equal(DeliveryOutcome.Delivered, onLead.Outcome);
        Assert.Null(WhatOf(onLead));
        Assert.DoesNotContain(Sf.Queries.Skip(queries), q => q.Contains("Opportunity", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Opportunities_the_user_cannot_read_leave_the_Account_and_a_limit_is_retried_with_nothing_written()
    {
        var (admin, id) = await ConnectAsync();
        var account = Sf.AddAccount("Encom");
        var email = Unique("lora");
        var contact = Sf.AddContact(email, account);
        var open = Sf.AddOpportunity(account);
        Sf.AddContactRole(open, contact);

        Sf.OpportunitiesHidden = true;
        try
        {
            var hidden = await DeliverAsync(id, Sent(admin, email));
            Assert.Equal(DeliveryOutcome.Delivered, hidden.Outcome);
            Assert.Equal(account, WhatOf(hidden));
            Assert.StartsWith("On the Account: Opportunities could not be read (INVALID_TYPE: sObject type 'OpportunityContactRole' is not supported.", hidden.Detail);
        }
        finally
        {
            Sf.OpportunitiesHidden = false;
        }

        // The Contact query passes, the role query meets the org's limit: it waits, no Task yet; then logged once.
        var message = Sent(admin, email);
        var tasks = Sf.TasksFor(contact).Count;
        var calls = Sf.DataCalls;
        var limited = await DeliverWithFailureOnSecondCallAsync(id, message);
        Assert.Equal(DeliveryOutcome.Limited, limited.Outcome);
        Assert.Contains("REQUEST_LIMIT_EXCEEDED", limited.Detail);
        Assert.Equal(calls + 2, Sf.DataCalls);
        Assert.Equal(tasks, Sf.TasksFor(contact).Count);
        var delivered = await DeliverAsync(id, message);
        Assert.Equal(open, WhatOf(delivered));
        Assert.Equal(tasks + 1, Sf.TasksFor(contact).Count);
    }

    /// <summary>The first data call (the Contact query) goes through; the second is refused for the org's daily limit.</summary>
    async Task<DeliveryResult> DeliverWithFailureOnSecondCallAsync(Guid id, OutboxMessage message)
    {
        Sf.FailAfter(1, 403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.");
        try
        {
            return await DeliverAsync(id, message);
        }
        finally
        {
            Sf.ClearFailures();
        }
    }
}
