using EmailTracking.Server.Feed;

namespace EmailTracking.Tests.Feed;

public sealed class FeedNotifierTests
{
    static readonly (Guid Team, Guid User) A = (Guid.NewGuid(), Guid.NewGuid());
    static readonly (Guid Team, Guid User) B = (Guid.NewGuid(), Guid.NewGuid());

    [Fact]
    public void Events_wake_their_users_and_their_teams_streams_and_no_others()
    {
        var notifier = new FeedNotifier();
        var (userA, teamA, userB, teamB) = (notifier.NextForUser(A.User), notifier.NextForTeam(A.Team), notifier.NextForUser(B.User), notifier.NextForTeam(B.Team));

        notifier.Notify([A]);

        Assert.True(userA.IsCompleted);
        Assert.True(teamA.IsCompleted);
        Assert.False(userB.IsCompleted);
        Assert.False(teamB.IsCompleted);
        // Two streams of one user wait on one signal; a wait that starts after a wake waits for the next one.
        Assert.Same(userB, notifier.NextForUser(B.User));
        var again = notifier.NextForUser(A.User);
        Assert.False(again.IsCompleted);
        notifier.Notify([A, A]);
        Assert.True(again.IsCompleted);
    }

    [Fact]
    public void A_notification_that_names_nobody_wakes_every_stream()
    {
        var notifier = new FeedNotifier();
        var waits = new[] { notifier.NextForUser(A.User), notifier.NextForTeam(A.Team), notifier.NextForUser(B.User), notifier.NextForTeam(B.Team) };
        notifier.NotifyAll();
        Assert.All(waits, w => Assert.True(w.IsCompleted));
    }

    [Fact]
    public void The_payload_names_each_owner_once_and_reads_back()
    {
        var payload = Assert.Single(FeedNotifier.Payloads([A, B, A]));
        Assert.Equal($"{A.Team:N}:{A.User:N},{B.Team:N}:{B.User:N}", payload);
        Assert.Equal([A, B], FeedNotifier.ParsePayload(payload)!);
    }

    [Fact]
    public void Owners_too_many_for_one_postgres_payload_are_named_in_several()
    {
        var many = Enumerable.Range(0, 500).Select(_ => (Guid.NewGuid(), Guid.NewGuid())).ToList();
        var payloads = FeedNotifier.Payloads(many);
        Assert.True(payloads.Count > 1);
        Assert.All(payloads, p => Assert.True(System.Text.Encoding.UTF8.GetByteCount(p) < 8000, $"{p.Length} bytes"));
        Assert.Equal(many, payloads.SelectMany(p => FeedNotifier.ParsePayload(p)!));
        Assert.Empty(FeedNotifier.Payloads([]));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("hello")]
    [InlineData("0123:4567")]
    [InlineData("00000000000000000000000000000001:")]
    [InlineData("00000000000000000000000000000001:00000000000000000000000000000002,garbage")]
    [InlineData("00000000-0000-0000-0000-000000000001:00000000000000000000000000000002")]
    public void A_payload_that_is_not_ours_names_nobody_so_every_stream_wakes(string? payload)
    {
        Assert.Null(FeedNotifier.ParsePayload(payload));
    }
}
