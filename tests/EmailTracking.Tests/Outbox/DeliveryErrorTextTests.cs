using EmailTracking.Server.Outbox;

namespace EmailTracking.Tests.Outbox;

/// <summary>
/// A delivery's error holds outsiders' words (a webhook receiver's HTTP reason phrase, Salesforce's error text): stored
/// as one clean line, so that `et outbox list` prints no terminal escape code, no tab that reads as another column and
/// no line break.
/// </summary>
public sealed class DeliveryErrorTextTests
{
    [Theory]
    [InlineData("The receiver answered 503 Down\u001b[2J\u001b[31m\tdead\tfake-column.", "The receiver answered 503 Down[2J[31m dead fake-column.")]
    [InlineData("Salesforce answered 400: INVALID_FIELD: No such column 'x'\r\non entity\n\nContact", "Salesforce answered 400: INVALID_FIELD: No such column 'x' on entity Contact")]
    [InlineData("The receiver answered 500 Internal Server Error.", "The receiver answered 500 Internal Server Error.")]
    public void A_delivery_error_is_stored_as_one_line_without_control_characters(string detail, string stored)
    {
        Assert.Equal(stored, OutboxWorker.Cut(detail));
    }

    [Fact]
    public void A_long_error_is_still_cut_and_none_stays_none()
    {
        Assert.Equal(2000, OutboxWorker.Cut(new string('x', 5000))!.Length);
        Assert.Null(OutboxWorker.Cut(null));
    }
}
