using EmailTracking.Server.Salesforce;
using EmailTracking.Tests.Fakes;

namespace EmailTracking.Tests.Salesforce;

/// <summary>SOQL string literals: whatever the text, Salesforce reads back exactly it, as one literal.</summary>
public sealed class SoqlLiteralTests
{
    [Theory]
    [InlineData("alan@encom.test", "'alan@encom.test'")]
    [InlineData("o'brien@encom.test", @"'o\'brien@encom.test'")]
    [InlineData(@"back\slash@encom.test", @"'back\\slash@encom.test'")]
    [InlineData(@"x\' OR Name != '", @"'x\\\' OR Name != \''")]
    [InlineData("tab\tnew\nline\"quote", @"'tab\tnew\nline\""quote'")]
    public void Literals_are_escaped_as_SOQL_documents(string value, string expected) =>
        Assert.Equal(expected, SalesforceClient.Literal(value));

    [Theory]
    [InlineData("o'brien@encom.test")]
    [InlineData(@"\\'') OR (Email != '")]
    [InlineData("\r\n\b\f\t'\"\\%_")]
    [InlineData("")]
    public void A_literal_reads_back_as_the_same_text_in_one_condition(string value)
    {
        var soql = FakeSalesforce.Soql.Parse($"SELECT Id FROM Contact WHERE Email IN ({SalesforceClient.Literal(value)}, 'b@x.test') LIMIT 5");
        var condition = Assert.Single(soql.Conditions);
        Assert.Equal("Email", condition.Field);
        Assert.Equal([value, "b@x.test"], condition.Values);
        Assert.Equal(5, soql.Limit);
    }
}
