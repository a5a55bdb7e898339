using System.Text.RegularExpressions;
using EmailTracking.Server.Tracking.Classification;

namespace EmailTracking.Tests.Classification;

/// <summary>
/// The user-agent rules are regular expressions with a 100 ms limit each. On a busy machine a thread can lose the
/// processor for longer than that in the middle of a match (a full test run on two cores once timed one out, and the
/// viewer page answered 500): a time-out must cost neither the request nor a wrong answer remembered for good.
/// </summary>
public sealed class UserAgentFactsTests
{
    static readonly UserAgentFacts Outlook = new(MailImageProxy.None, null, false, false, null);

    static Func<string?, UserAgentFacts> TimesOut(int times, UserAgentFacts then)
    {
        var calls = 0;
        return _ => ++calls <= times ? throw new RegexMatchTimeoutException("ua", "pattern", TimeSpan.FromMilliseconds(100)) : then;
    }

    [Fact]
    public void A_time_out_is_tried_once_more_and_the_answer_then_remembered()
    {
        var ua = $"Microsoft Office/16.0 (test {Guid.NewGuid():N})";
        Assert.Same(Outlook, UserAgentFacts.For(ua, TimesOut(1, Outlook)));
        // Remembered: the rules are not run again.
        Assert.Same(Outlook, UserAgentFacts.For(ua, TimesOut(int.MaxValue, Outlook)));
    }

    [Fact]
    public void Two_time_outs_give_an_answer_that_says_so_and_is_not_remembered()
    {
        var ua = $"Microsoft Office/16.0 (test {Guid.NewGuid():N})";
        var facts = UserAgentFacts.For(ua, TimesOut(2, Outlook));
        Assert.Same(UserAgentFacts.TimedOut, facts);
        Assert.Contains("timed out", facts.BotSignal);
        // The next hit with the same user agent is analysed afresh.
        Assert.Same(Outlook, UserAgentFacts.For(ua, TimesOut(0, Outlook)));
    }

    [Fact]
    public void Other_failures_of_the_rules_are_not_swallowed()
    {
        var ua = $"Microsoft Office/16.0 (test {Guid.NewGuid():N})";
        Assert.Throws<InvalidOperationException>(() => UserAgentFacts.For(ua, _ => throw new InvalidOperationException("bug")));
    }
}
