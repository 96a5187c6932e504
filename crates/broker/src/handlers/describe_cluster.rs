//! DescribeCluster: this node, as the cluster's only broker and controller.

use eddy_protocol::StrBytes;
use eddy_protocol::messages::{
    DescribeClusterRequest, DescribeClusterResponse,
    describe_cluster_response::DescribeClusterBroker,
};

use crate::state::Broker;

pub fn handle(broker: &Broker, _request: DescribeClusterRequest) -> DescribeClusterResponse {
    let (host, port) = broker.broker_config().advertised_endpoint();
    DescribeClusterResponse {
        cluster_id: StrBytes::from(broker.cluster_id.as_str()),
        controller_id: broker.node_id,
        brokers: vec![DescribeClusterBroker {
            broker_id: broker.node_id,
            host: StrBytes::from(host),
            port: i32::from(port),
            rack: None,
            ..Default::default()
        }],
        ..Default::default()
    }
}
