using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Replies.Classification;

public static class InboundClassificationServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="InboundClassifier"/> as a singleton with <see cref="InboundClassifierOptions"/> bound from
    /// <c>Replies:Classifier</c>. The classifier is pure, so one instance serves every request and background worker.
    /// </summary>
    public static IServiceCollection AddInboundClassification(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);

        services.AddOptions<InboundClassifierOptions>()
            .Bind(configuration.GetSection(InboundClassifierOptions.SectionName))
            .Validate(o => o.MaxBodyChars >= 1024, "Replies:Classifier:MaxBodyChars must be at least 1024")
            .Validate(o => o.MaxParts >= 1 && o.MaxDepth >= 1 && o.MaxRecipients >= 1,
                "Replies:Classifier:MaxParts, MaxDepth and MaxRecipients must be positive")
            .ValidateOnStart();
        services.AddSingleton(sp => new InboundClassifier(
            sp.GetRequiredService<IOptions<InboundClassifierOptions>>().Value,
            sp.GetService<TimeProvider>()));
        return services;
    }
}
