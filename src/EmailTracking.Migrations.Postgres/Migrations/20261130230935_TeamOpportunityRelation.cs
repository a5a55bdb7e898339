using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Postgres.Migrations
{
    /// <inheritdoc />
    public partial class TeamOpportunityRelation : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<int>(
                name: "RelateToOpportunity",
                table: "SalesforceConnections",
                type: "integer",
                nullable: false,
                defaultValue: 0);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "RelateToOpportunity",
                table: "SalesforceConnections");
        }
    }
}
