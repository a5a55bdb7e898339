using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Sqlite.Migrations
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
                type: "INTEGER",
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
