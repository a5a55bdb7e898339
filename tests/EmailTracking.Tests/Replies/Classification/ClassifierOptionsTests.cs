using EmailTracking.Server.Replies.Classification;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using MimeKit;

namespace EmailTracking.Tests.Replies.Classification;

public sealed class ClassifierOptionsTests
{
    [Fact]
    public void The_classifier_is_a_configured_singleton()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Replies:Classifier:MaxBodyChars"] = "2048" })
            .Build();
        using var provider = new ServiceCollection().AddInboundClassification(configuration).BuildServiceProvider();

        Assert.Equal(2048, provider.GetRequiredService<IOptions<InboundClassifierOptions>>().Value.MaxBodyChars);
        Assert.Same(provider.GetRequiredService<InboundClassifier>(), provider.GetRequiredService<InboundClassifier>());
    }

    [Fact]
    public void A_bad_setting_is_refused()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Replies:Classifier:MaxBodyChars"] = "10" })
            .Build();
        using var provider = new ServiceCollection().AddInboundClassification(configuration).BuildServiceProvider();
        Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<InboundClassifier>());
    }

    [Fact]
    public void Only_the_first_MaxBodyChars_of_the_text_are_looked_at()
    {
        // The out-of-office wording sits after 1,500 characters of filler: beyond a 1,024-character cap it is not seen.
        var message = new MimeMessage { Subject = "Re: Pricing", Date = new DateTimeOffset(2026, 3, 3, 10, 0, 0, TimeSpan.Zero) };
        message.From.Add(new MailboxAddress("Tom", "tom@buyer.example"));
        message.To.Add(new MailboxAddress("Jane", "jane@sellerco.example"));
        message.Body = new TextPart("plain")
        {
            Text = new string('.', 1500) + "\nThis is an automatic reply. I am out of the office with limited access to email until 12 March.\n",
        };
        Assert.Equal(InboundKind.Human, new InboundClassifier(new InboundClassifierOptions { MaxBodyChars = 1024 }).Classify(message).Kind);
        Assert.Equal(InboundKind.AutoReply, new InboundClassifier().Classify(message).Kind);
    }
}
