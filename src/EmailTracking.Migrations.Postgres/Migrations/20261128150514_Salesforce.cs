using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Postgres.Migrations
{
    /// <inheritdoc />
    public partial class Salesforce : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "SalesforceConnections",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "uuid", nullable: false),
                    TeamId = table.Column<Guid>(type: "uuid", nullable: false),
                    ConnectedByUserId = table.Column<Guid>(type: "uuid", nullable: false),
                    InstanceUrl = table.Column<string>(type: "character varying(300)", maxLength: 300, nullable: false),
                    AuthKind = table.Column<int>(type: "integer", nullable: false),
                    SalesforceUsername = table.Column<string>(type: "character varying(320)", maxLength: 320, nullable: true),
                    ProtectedSecret = table.Column<string>(type: "text", nullable: false),
                    Status = table.Column<int>(type: "integer", nullable: false),
                    StatusMessage = table.Column<string>(type: "character varying(1000)", maxLength: 1000, nullable: true),
                    LogSent = table.Column<bool>(type: "boolean", nullable: false),
                    LogReplies = table.Column<bool>(type: "boolean", nullable: false),
                    LogOpens = table.Column<bool>(type: "boolean", nullable: false),
                    LogClicks = table.Column<bool>(type: "boolean", nullable: false),
                    LogAutoReplies = table.Column<bool>(type: "boolean", nullable: false),
                    LogBounces = table.Column<bool>(type: "boolean", nullable: false),
                    UnknownRecipients = table.Column<int>(type: "integer", nullable: false),
                    CreatedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_SalesforceConnections", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_SalesforceConnections_TeamId",
                table: "SalesforceConnections",
                column: "TeamId",
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "SalesforceConnections");
        }
    }
}
