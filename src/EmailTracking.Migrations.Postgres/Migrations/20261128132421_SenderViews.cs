using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Postgres.Migrations
{
    /// <inheritdoc />
    public partial class SenderViews : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "SenderViewedAt",
                table: "Messages",
                type: "timestamp with time zone",
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "SenderViewedAt",
                table: "Messages");
        }
    }
}
