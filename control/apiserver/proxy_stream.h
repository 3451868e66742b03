// The byte relay of the node proxy (see node_proxy.h): opens a TLS connection to a node API
// with the apiserver's kubelet client certificate, forwards the client's request, and
//   - for a 101 Switching Protocols answer (WebSocket or SPDY upgrade of exec, attach,
//     portforward) relays the 101 and then splices bytes both ways until either side closes;
//   - otherwise relays the status and headers and streams the body as chunks as it arrives
//     (logs with follow=true), until the node ends it or the client goes away.
// Neither direction has a deadline once the exchange started; the connect, TLS handshake and
// response header have one (10 s each).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "apiserver/http.h"
#include "apiserver/status.h"

namespace podwarp::apiserver {

using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

struct NodeRequest {
  std::string host;
  std::uint16_t port = 10250;
  std::string target;  // path + "?" + query as the client sent it
};

// Relays one request to the node; the client connection is used up afterwards (the caller
// closes it). Returns the HTTP status given to the client (502 when the node is unreachable;
// then a metav1.Status body was written).
boost::asio::awaitable<unsigned> relay_to_node(
    TlsStream& client, boost::beast::flat_buffer& client_buffer,
    const boost::beast::http::request<boost::beast::http::string_body>& request,
    const NodeRequest& node, boost::asio::ssl::context& node_tls);

// A plain (not upgrade) request relayed for a transport that frames the body itself (HTTP/2):
// the node's status and end-to-end headers, and its body as the frames
// of a feed (HTTP chunks, like watch frames) pushed as they arrive, on the caller's executor.
// The feed closes when the node ends the body; its on_finish (the client is done) ends the
// relay. The node is not read further while 64 frames wait in the feed.
struct NodeStream {
  unsigned status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<WatchFeed> body;
};
boost::asio::awaitable<std::expected<NodeStream, ApiError>> open_node_stream(
    const boost::beast::http::request<boost::beast::http::string_body>& request,
    const NodeRequest& node, boost::asio::ssl::context& node_tls);

}  // namespace podwarp::apiserver
