using EmailTracking.Server.Replies;

namespace EmailTracking.Tests.Replies;

public sealed class SubjectsTests
{
    [Theory]
    [InlineData("Re: Proposal", "Proposal")]
    [InlineData("RE: AW: Sv: Proposal ", "Proposal")]
    [InlineData("Re[2]: Proposal", "Proposal")]
    [InlineData("R: RES: Proposal", "Proposal")]
    [InlineData("Re:Proposal", "Proposal")]
    [InlineData("Fwd: Proposal", "Fwd: Proposal")]
    [InlineData("Regarding: Proposal", "Regarding: Proposal")]
    [InlineData("Rent review", "Rent review")]
    [InlineData(null, "")]
    public void A_subjects_topic_is_what_remains_without_its_reply_prefixes(string? subject, string topic) =>
        Assert.Equal(topic, Subjects.Topic(subject));

    [Theory]
    [InlineData("RE: Quarterly numbers", true)]
    [InlineData("  aw: Angebot", true)]
    [InlineData("Quarterly numbers", false)]
    [InlineData("FW: Quarterly numbers", false)]
    [InlineData("Re-launch plan", false)]
    [InlineData(null, false)]
    public void An_answers_subject_starts_with_a_reply_prefix(string? subject, bool answer) =>
        Assert.Equal(answer, Subjects.IsAnswer(subject));
}
